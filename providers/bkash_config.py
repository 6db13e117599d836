"""Where and as whom to call bKash: the hosts, one merchant credential set, the API paths
(../shared/reference/bkash-api.md §1, §2). Shared by the client and the token manager."""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

SANDBOX_BASE_URL = "https://tokenized.sandbox.bka.sh/v1.2.0-beta"  # §1 [OFF], [OBS]
PRODUCTION_BASE_URL = "https://tokenized.pay.bka.sh/v1.2.0-beta"


class BkashCredentials(BaseModel):
    """One merchant credential set. Secrets are SecretStr so they never print."""

    model_config = ConfigDict(frozen=True)

    base_url: str = SANDBOX_BASE_URL
    app_key: str
    app_secret: SecretStr
    username: str
    password: SecretStr


def credential_id(creds: BkashCredentials) -> str:
    """A stable, non-secret name for one credential set (bKash counts token calls per credential
    set): the key of its shared token, in a file name or a Redis key."""
    return hashlib.sha256("|".join((creds.base_url, creds.app_key, creds.username))
                          .encode()).hexdigest()[:16]


class BkashPaths(BaseModel):
    grant: str = "/tokenized/checkout/token/grant"
    refresh: str = "/tokenized/checkout/token/refresh"
    create: str = "/tokenized/checkout/create"
    execute: str = "/tokenized/checkout/execute"
    query: str = "/tokenized/checkout/payment/status"
    capture: str = "/tokenized/checkout/payment/confirm/capture"
    # §2/§15.1: the official plugin uses /payment/confirm/void, the portal page spells it
    # /payment/confirm/capture/void. Configurable; default follows the official plugin.
    void: str = "/tokenized/checkout/payment/confirm/void"
    search: str = "/tokenized/checkout/general/searchTransaction"
    # v1 refund and refund status share one URL (§2 #9/#10, production.md §1).
    refund: str = "/tokenized/checkout/payment/refund"
    # Which refund API: v1 (the official plugin's, the default) or v2 (production.md §1: [3P]
    # 2024-26 clients, not in a stored bKash page, so [INF] configurable).
    refund_api: Literal["v1", "v2"] = "v1"
    refund_v2: str = "/v2/tokenized-checkout/refund/payment/transaction"
    refund_status_v2: str = "/v2/tokenized-checkout/refund/payment/status"
    # v2 lives on the host without the /v1.2.0-beta segment (bkash-api.md §1 "host has no
    # /v1.2.0-beta"; 3P clients post to https://tokenized.sandbox.bka.sh/v2/tokenized-checkout/...).
    # None derives it from the credential set's base_url; [INF] configurable.
    refund_v2_base_url: str | None = None

    def refund_v2_base(self, base_url: str) -> str:
        """The v2 refund base: the configured one, else ``base_url`` without its version."""
        return (self.refund_v2_base_url or strip_api_version(base_url)).rstrip("/")


# The last path segment of a base URL when it is an API version: "v1.2.0-beta", "v1", "v2.0".
_VERSION_SEGMENT = re.compile(r"/v\d+(?:\.\d+)*(?:-[A-Za-z0-9.]+)?$")


def strip_api_version(base_url: str) -> str:
    """https://tokenized.pay.bka.sh/v1.2.0-beta → https://tokenized.pay.bka.sh (a base URL with a
    path prefix keeps it: http://host/bkash/v1.2.0-beta → http://host/bkash)."""
    return _VERSION_SEGMENT.sub("", base_url.rstrip("/"))
