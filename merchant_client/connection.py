"""Connecting to Temporal, the client's own settings, and errors a merchant can act on."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

from contracts.common import DEFAULT_MAX_AMOUNT_POISHA, TASK_QUEUE, SearchAttribute


class PaymentError(Exception):
    """A merchant action that could not be taken; the message says why and what to do."""


class ClientSettings(BaseModel):
    """What merchant code needs besides the Temporal connection: no provider secret."""

    callback_base_url: str | None = None
    task_queue: str = TASK_QUEUE
    max_amount_poisha: int = DEFAULT_MAX_AMOUNT_POISHA


def load_client_settings(env: Mapping[str, str] | None = None) -> ClientSettings:
    """PAYMENTS_CALLBACK_BASE_URL (needed only to start payments), PAYMENTS_TASK_QUEUE,
    PAYMENTS_MAX_AMOUNT_POISHA."""
    env = os.environ if env is None else env
    limit = env.get("PAYMENTS_MAX_AMOUNT_POISHA", "")
    if limit and (not limit.isdigit() or int(limit) <= 0):
        raise PaymentError("PAYMENTS_MAX_AMOUNT_POISHA must be a positive whole number of poisha")
    return ClientSettings(callback_base_url=(env.get("PAYMENTS_CALLBACK_BASE_URL") or None),
                          task_queue=env.get("PAYMENTS_TASK_QUEUE") or TASK_QUEUE,
                          max_amount_poisha=int(limit) if limit else DEFAULT_MAX_AMOUNT_POISHA)


def temporal_target() -> tuple[str, str]:
    config = ClientConfig.load_client_connect_config()
    return config.get("target_host") or "localhost:7233", config.get("namespace") or "default"


async def connect(**overrides) -> Client:
    """Connect with temporalio.envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS / API key from
    the environment or a TOML profile; default localhost:7233) and the project's data converter
    (pydantic JSON, encrypted with PAYMENTS_ENCRYPTION_KEYS[_FILE]: merchant_client.encryption)."""
    from merchant_client.encryption import payments_data_converter

    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", "localhost:7233")
    config.update(overrides)
    config.setdefault("data_converter", payments_data_converter())
    try:
        return await Client.connect(**config)
    except RuntimeError as err:
        raise PaymentError(
            f"cannot reach Temporal at {config['target_host']} ({_first_line(err)}); start it "
            "(make demo ARGS=--keep) or set TEMPORAL_ADDRESS to host:port of your server") from None


def explain_rpc_error(err: RPCError, what: str,
                      client: Client | None = None) -> PaymentError | None:
    """The merchant-actionable meaning of a Temporal RPC error, or None (re-raise it)."""
    message = err.message or ""
    target, namespace = temporal_target()
    if client is not None:
        target, namespace = client.service_client.config.target_host, client.namespace
    if err.status == RPCStatusCode.NOT_FOUND and "namespace" in message.lower():
        return PaymentError(f"Temporal has no namespace {namespace!r}: set TEMPORAL_NAMESPACE to "
                            "the namespace the payments worker uses")
    if err.status == RPCStatusCode.NOT_FOUND:
        return PaymentError(f"no {what}")
    if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in message.lower():
        return PaymentError(
            f"namespace {namespace!r} lacks the project's search attributes; register them once "
            f"with: {register_search_attributes_command(namespace)}")
    if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return PaymentError(f"Temporal at {target} is unavailable ({_first_line(err)}); retry "
                            "when it is back (nothing was lost: the request can be sent again)")
    return None


def register_search_attributes_command(namespace: str = "default") -> str:
    commands = []
    for kind in sorted({a.kind for a in SearchAttribute}):
        names = " ".join(f"--name {a.value}" for a in SearchAttribute if a.kind == kind)
        commands.append(f"temporal operator search-attribute create --namespace {namespace} "
                        f"{names} --type {kind}")
    return " && ".join(commands)


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
