"""bKash Tokenized Checkout client (Auth & Capture): pure httpx + pydantic, no Temporal.

Facts and their sources are in ../shared/reference/bkash-api.md; section numbers are cited where a
quirk matters. One ``BkashClient`` per credential set, sharing the worker's ``httpx.AsyncClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from datetime import timedelta
from typing import Any, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from providers.bkash_errors import (
    BkashError,
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashTokenRateLimited,
    BkashUnexpectedResponse,
    classify,
)
from providers.money import format_bdt

log = logging.getLogger("providers.bkash")

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
    refund: str = "/tokenized/checkout/payment/refund"


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreatedPayment(_Response):
    payment_id: str = Field(validation_alias=AliasChoices("paymentID", "paymentId"))
    bkash_url: str = Field(validation_alias="bkashURL")
    transaction_status: str = Field(default="Initiated", validation_alias="transactionStatus")
    success_callback_url: str | None = Field(default=None, validation_alias="successCallbackURL")


class PaymentStatus(_Response):
    """Execute, query, capture and void all answer with this core."""

    payment_id: str = Field(validation_alias=AliasChoices("paymentID", "paymentId"))
    transaction_status: str = Field(validation_alias="transactionStatus")
    trx_id: str | None = Field(default=None, validation_alias=AliasChoices("trxID", "trxId"))
    amount: str | None = None
    # §7: query spells it merchantInvoice, create/execute merchantInvoiceNumber.
    merchant_invoice: str | None = Field(
        default=None, validation_alias=AliasChoices("merchantInvoiceNumber", "merchantInvoice"))


class TransactionDetails(_Response):
    trx_id: str = Field(validation_alias="trxID")
    transaction_status: str = Field(validation_alias="transactionStatus")
    amount: str
    completed_time: str | None = Field(default=None, validation_alias="completedTime")


class RefundResult(_Response):
    original_trx_id: str | None = Field(default=None, validation_alias="originalTrxID")
    refund_trx_id: str | None = Field(default=None, validation_alias="refundTrxID")
    transaction_status: str = Field(validation_alias="transactionStatus")
    amount: str | None = None


class TokenState(BaseModel):
    """Everything the token budget depends on; shared between worker processes by a TokenStore."""

    id_token: str | None = None
    refresh_token: str | None = None
    obtained_at: float = 0.0
    expires_at: float = 0.0
    calls: list[float] = []  # when each grant/refresh was made (wall clock)


class TokenStore:
    """Where the token lives. The default keeps it in this process only."""

    def load(self) -> TokenState | None:
        return None

    def save(self, state: TokenState) -> None:
        pass

    @contextlib.asynccontextmanager
    async def locked(self):
        yield


class FileTokenStore(TokenStore):
    """Share one token and one grant budget between every worker process on this host.

    A worker restart (deploy, crash, kill -9) or a second worker process must not grant again:
    bKash counts grant/refresh calls per credential set, not per process, and blocks after two an
    hour (§3.2). The file holds a secret, so it is created 0600; a flock serializes renewals.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = Path(path)

    def load(self) -> TokenState | None:
        try:
            return TokenState.model_validate_json(self._path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, state: TokenState) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(state.model_dump_json())
        os.replace(tmp, self._path)

    @contextlib.asynccontextmanager
    async def locked(self):
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class TokenManager:
    """Grant once, cache, refresh before expiry, re-grant once on HTTP 401.

    bKash blocks a merchant for an hour after more than two grant/refresh calls within an hour
    (§3.2, [DOC via api-evangelist]; karim-007/laravel-bkash-tokenize PR #5-#7). The budget is
    enforced here: a refresh due at minute 50 is postponed while the budget is spent and the token is
    still valid; only when no valid token is left does a caller get ``BkashTokenRateLimited``.
    With a ``FileTokenStore`` the token and the budget survive restarts and are shared by processes.
    """

    def __init__(self, http: httpx.AsyncClient, creds: BkashCredentials, paths: BkashPaths, *,
                 timeout: float = 30.0, refresh_after: float = 50 * 60,
                 calls_per_hour: int = 2, clock: Callable[[], float] = time.time,
                 store: TokenStore | None = None) -> None:
        self._http, self._creds, self._paths = http, creds, paths
        self._timeout = timeout
        self._refresh_after = refresh_after
        self._calls_per_hour = calls_per_hour
        self._clock = clock
        self._lock = asyncio.Lock()
        self._store = store or TokenStore()
        self.state = TokenState()

    @property
    def token_calls_last_hour(self) -> int:
        self._forget_old_calls()
        return len(self.state.calls)

    def _fresh(self) -> bool:
        return bool(self.state.id_token) and \
            self._clock() < self.state.obtained_at + self._refresh_after

    def _usable(self) -> bool:
        """Valid, though due for refresh: keep using it while the budget is spent."""
        return bool(self.state.id_token) and self._clock() < self.state.expires_at - 60 \
            and not self._budget_left()

    async def token(self) -> str:
        async with self._lock:
            if self._fresh() or self._usable():
                return self.state.id_token  # type: ignore[return-value]
            async with self._store.locked():
                self._adopt_stored()
                if self._fresh() or self._usable():
                    return self.state.id_token  # type: ignore[return-value]
                return await self._renew(prefer_refresh=True)

    async def replace(self, rejected_token: str) -> str:
        """The gateway answered 401 to ``rejected_token``: get a new one (once across callers)."""
        async with self._lock:
            async with self._store.locked():
                self._adopt_stored()
                if self.state.id_token and self.state.id_token != rejected_token:
                    return self.state.id_token  # another caller or process already replaced it
                self.state.id_token = None
                return await self._renew(prefer_refresh=False)

    def _adopt_stored(self) -> None:
        stored = self._store.load()
        # Every renewal is saved, so the store is the truth for the token and the calls made.
        if stored is not None and stored.obtained_at >= self.state.obtained_at:
            self.state = stored

    def _forget_old_calls(self) -> None:
        horizon = self._clock() - 3600
        self.state.calls = [t for t in self.state.calls if t > horizon]

    def _budget_left(self) -> bool:
        return self._calls_per_hour <= 0 or self.token_calls_last_hour < self._calls_per_hour

    async def _renew(self, *, prefer_refresh: bool) -> str:
        if not self._budget_left():
            wait = max(1.0, self.state.calls[0] + 3600 - self._clock())
            raise BkashTokenRateLimited(
                "token", "a new token is needed but the two grant/refresh calls allowed per hour "
                f"are spent; next call possible in {wait:.0f} s",
                retry_after=timedelta(seconds=wait))
        try:
            if prefer_refresh and self.state.refresh_token:
                try:
                    return await self._token_call("refresh", self._paths.refresh,
                                                  {"refresh_token": self.state.refresh_token})
                except BkashTokenRateLimited:
                    raise
                except BkashError as err:
                    log.warning("bKash token refresh failed (%s); granting a new token", err.kind)
                    if not self._budget_left():
                        raise
            return await self._token_call("grant", self._paths.grant, {})
        finally:
            self._store.save(self.state)  # the calls count even when they failed

    async def _token_call(self, operation: str, path: str, extra: dict[str, str]) -> str:
        body = {"app_key": self._creds.app_key,
                "app_secret": self._creds.app_secret.get_secret_value(), **extra}
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "username": self._creds.username,
                   "password": self._creds.password.get_secret_value()}
        self.state.calls.append(self._clock())
        try:
            resp = await self._http.post(self._creds.base_url + path, json=body, headers=headers,
                                         timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise BkashNoResponse(operation, f"no answer ({type(exc).__name__})") from None
        if resp.status_code == 429:
            raise BkashTokenRateLimited(operation, "bKash refused the token call (HTTP 429): "
                                        "too many grant/refresh calls this hour",
                                        retry_after=timedelta(hours=1))
        if resp.status_code in (401, 403):
            raise BkashMerchantConfigError(
                operation, f"bKash refused the credentials (HTTP {resp.status_code}): check "
                "BKASH_USERNAME and BKASH_PASSWORD")
        if resp.status_code >= 300:
            raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash")
        data = _json(resp, operation, None)
        _raise_for_business_error(data, operation, None)
        token = data.get("id_token")
        if not isinstance(token, str) or not token:
            raise BkashUnexpectedResponse(operation, "the answer carries no id_token")
        now = self._clock()
        self.state.id_token = token
        self.state.refresh_token = data.get("refresh_token") or self.state.refresh_token
        self.state.obtained_at = now
        self.state.expires_at = now + float(data.get("expires_in") or 3600)
        log.info("bKash %s ok; token valid for %s s", operation, data.get("expires_in"))
        return token


class BkashClient:
    """Every Auth & Capture call; raises a typed ``BkashError`` for anything but success."""

    def __init__(self, http: httpx.AsyncClient, creds: BkashCredentials,
                 paths: BkashPaths | None = None, *, timeout: float = 30.0,
                 tokens: TokenManager | None = None, token_store: TokenStore | None = None) -> None:
        self._http = http
        self._creds = creds
        self._paths = paths or BkashPaths()
        self._timeout = timeout  # the seed: "default timeout value of bKash APIs as 30 seconds"
        self.tokens = tokens or TokenManager(http, creds, self._paths, timeout=timeout,
                                             store=token_store)

    async def create_payment(self, *, amount_poisha: int, invoice_number: str,
                             payer_reference: str, callback_url: str,
                             intent: Literal["authorization", "sale"] = "authorization",
                             ) -> CreatedPayment:
        body = {"mode": "0011", "payerReference": payer_reference, "callbackURL": callback_url,
                "amount": format_bdt(amount_poisha), "currency": "BDT", "intent": intent,
                "merchantInvoiceNumber": invoice_number, "merchantAssociationInfo": ""}
        data = await self._call("create", self._paths.create, body, None)
        return _parse(CreatedPayment, data, "create", None)

    async def execute_payment(self, payment_id: str) -> PaymentStatus:
        return await self._status_call("execute", self._paths.execute, payment_id)

    async def query_payment(self, payment_id: str) -> PaymentStatus:
        return await self._status_call("query", self._paths.query, payment_id)

    async def capture_payment(self, payment_id: str) -> PaymentStatus:
        return await self._status_call("capture", self._paths.capture, payment_id)

    async def void_payment(self, payment_id: str) -> PaymentStatus:
        return await self._status_call("void", self._paths.void, payment_id)

    async def search_transaction(self, trx_id: str) -> TransactionDetails:
        data = await self._call("search", self._paths.search, {"trxID": trx_id}, None)
        return _parse(TransactionDetails, data, "search", None)

    async def refund_payment(self, *, payment_id: str, trx_id: str, amount_poisha: int,
                             sku: str, reason: str) -> RefundResult:
        body = {"paymentID": payment_id, "amount": format_bdt(amount_poisha), "trxID": trx_id,
                "sku": sku, "reason": reason}
        data = await self._call("refund", self._paths.refund, body, payment_id)
        return _parse(RefundResult, data, "refund", payment_id)

    async def refund_status(self, *, payment_id: str, trx_id: str) -> RefundResult:
        # §2 row 10: the same URL, the body without an amount.
        data = await self._call("refund status", self._paths.refund,
                                {"paymentID": payment_id, "trxID": trx_id}, payment_id)
        return _parse(RefundResult, data, "refund status", payment_id)

    async def _status_call(self, operation: str, path: str, payment_id: str) -> PaymentStatus:
        data = await self._call(operation, path, {"paymentID": payment_id}, payment_id)
        return _parse(PaymentStatus, data, operation, payment_id)

    async def _call(self, operation: str, path: str, body: dict[str, Any],
                    payment_id: str | None) -> dict[str, Any]:
        token = await self.tokens.token()
        resp = await self._post(operation, path, body, token, payment_id)
        if resp.status_code == 401:
            # The gateway answered before bKash ran (§2.2), so sending again is safe. Once only.
            token = await self.tokens.replace(token)
            resp = await self._post(operation, path, body, token, payment_id)
        if resp.status_code == 401:
            raise BkashMerchantConfigError(operation, "bKash rejected a fresh token (HTTP 401): "
                                           "check BKASH_APP_KEY and the credential set",
                                           payment_id=payment_id)
        if resp.status_code == 403:
            raise BkashMerchantConfigError(operation, "bKash answered HTTP 403: the X-App-Key does "
                                           "not match the token's app; check BKASH_APP_KEY",
                                           payment_id=payment_id)
        if resp.status_code >= 300:
            # The official plugin treats any non-200 as "no reliable answer" and queries (§2.2).
            raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash",
                                  payment_id=payment_id)
        data = _json(resp, operation, payment_id)
        _raise_for_business_error(data, operation, payment_id)
        return data

    async def _post(self, operation: str, path: str, body: dict[str, Any], token: str,
                    payment_id: str | None) -> httpx.Response:
        # §2.1: the raw id_token, no "Bearer " prefix, plus X-App-Key.
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": token, "X-App-Key": self._creds.app_key}
        started = time.monotonic()
        try:
            resp = await self._http.post(self._creds.base_url + path, json=body, headers=headers,
                                         timeout=self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise BkashNoResponse(operation, f"could not connect ({type(exc).__name__})",
                                  payment_id=payment_id, request_sent=False) from None
        except httpx.TimeoutException:
            raise BkashNoResponse(operation, f"no answer within {self._timeout:g} s",
                                  payment_id=payment_id) from None
        except httpx.HTTPError as exc:
            raise BkashNoResponse(operation, f"connection lost ({type(exc).__name__})",
                                  payment_id=payment_id) from None
        log.info("bKash %s %s -> HTTP %s in %.0f ms", operation, payment_id or "",
                 resp.status_code, (time.monotonic() - started) * 1000)
        return resp


def _json(resp: httpx.Response, operation: str, payment_id: str | None) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise BkashNoResponse(operation, "the answer is not JSON", payment_id=payment_id) from None
    if not isinstance(data, dict):
        raise BkashNoResponse(operation, "the answer is not a JSON object", payment_id=payment_id)
    return data


def _raise_for_business_error(data: dict[str, Any], operation: str,
                              payment_id: str | None) -> None:
    # Both envelopes exist (§8.3, §15.5): statusCode/statusMessage and errorCode/errorMessage.
    code = data.get("statusCode", data.get("errorCode"))
    if code is None:
        if "message" in data:  # gateway text, not bKash's answer (§2.2)
            raise BkashNoResponse(operation, "gateway answered without a bKash status",
                                  payment_id=payment_id)
        raise BkashUnexpectedResponse(operation, "the answer carries no status code",
                                      payment_id=payment_id)
    if str(code) != "0000" or "errorCode" in data:
        message = str(data.get("statusMessage") or data.get("errorMessage") or "")
        raise classify(operation, str(code), message, payment_id)


def _parse(model: type[_Response], data: dict[str, Any], operation: str,
           payment_id: str | None):
    try:
        return model.model_validate(data)
    except ValueError:
        raise BkashUnexpectedResponse(operation, f"unexpected answer shape for {model.__name__}",
                                      payment_id=payment_id) from None
