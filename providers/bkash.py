"""bKash Tokenized Checkout client (Auth & Capture): pure httpx + pydantic, no Temporal.

Facts and their sources are in ../shared/reference/bkash-api.md; section numbers are cited where a
quirk matters. One ``BkashClient`` per credential set, sharing the worker's ``httpx.AsyncClient``.
Tokens (grant, refresh, budget, stores) are ``providers.bkash_tokens``; credentials and paths
``providers.bkash_config``; codes ``providers.bkash_codes``; errors ``providers.bkash_errors``.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from contracts.bkash import TransactionStatus
from contracts.money import format_bdt, parse_bdt
from providers.bkash_codes import (
    INVALID_APP_TOKEN,
    INVALID_PAYMENT_ID,
    MODE_CHECKOUT_URL,
    REFUND_STATUS_COMPLETED,
    REFUND_STATUS_FAILED,
)
from providers.bkash_config import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, BkashCredentials, BkashPaths
from providers.bkash_errors import (
    BkashError,
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashRefundMerchantConfig,
    BkashRetryableError,
    BkashTokenRateLimited,
    BkashTokenUnavailable,
    BkashUnexpectedResponse,
    json_object,
    raise_for_business_error,
    raise_for_refund_error,
)
from providers.bkash_tokens import FileTokenStore, InMemoryTokenStore, TokenManager, TokenState, TokenStore

# Re-exported: callers import the credentials, paths and token stores from here.
__all__ = [
    "PRODUCTION_BASE_URL", "SANDBOX_BASE_URL", "BkashClient", "BkashCredentials", "BkashPaths",
    "CreatedPayment", "FileTokenStore", "InMemoryTokenStore", "PaymentStatus", "RefundStatus",
    "RefundTransaction", "TokenManager", "TokenState", "TokenStore", "TransactionDetails",
]

log = logging.getLogger("providers.bkash")


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreatedPayment(_Response):
    payment_id: str = Field(validation_alias=AliasChoices("paymentID", "paymentId"))
    bkash_url: str = Field(validation_alias="bkashURL")
    transaction_status: str = Field(default=TransactionStatus.INITIATED.value,
                                    validation_alias="transactionStatus")
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


class RefundTransaction(_Response):
    """One refund of a transaction: the refund's own answer, or an entry of refund status.

    v1 spells it refundTrxID/transactionStatus/amount ("10" or "500.00", [OBS] §9); v2
    refundTrxId/refundTransactionStatus/refundAmount (§9 [3P]).
    """

    refund_trx_id: str = Field(validation_alias=AliasChoices("refundTrxID", "refundTrxId"))
    transaction_status: str = Field(
        validation_alias=AliasChoices("refundTransactionStatus", "transactionStatus"))
    amount_poisha: int | None = Field(default=None,
                                      validation_alias=AliasChoices("refundAmount", "amount"))
    original_trx_id: str | None = Field(
        default=None, validation_alias=AliasChoices("originalTrxID", "originalTrxId"))
    completed_time: str | None = Field(default=None, validation_alias="completedTime")

    @field_validator("amount_poisha", mode="before")
    @classmethod
    def _poisha(cls, v: object) -> int | None:
        if v is None or v == "":
            return None
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValueError("amount is not a BDT amount")
        return parse_bdt(str(v))

    @property
    def completed(self) -> bool:
        return self.transaction_status.lower() == REFUND_STATUS_COMPLETED.lower()

    @property
    def failed(self) -> bool:
        return self.transaction_status.lower() in {s.lower() for s in REFUND_STATUS_FAILED}


class RefundStatus(BaseModel):
    """The refunds bKash reports for one transaction: v1 gives the latest only, v2 the list."""

    original_trx_id: str | None = None
    refunds: list[RefundTransaction] = []


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
        body = {"mode": MODE_CHECKOUT_URL, "payerReference": payer_reference,
                "callbackURL": callback_url, "amount": format_bdt(amount_poisha),
                "currency": "BDT", "intent": intent, "merchantInvoiceNumber": invoice_number,
                "merchantAssociationInfo": ""}
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
                             sku: str, reason: str) -> RefundTransaction:
        """Refund (part of) a completed transaction; money moves, so an error that is not a
        refusal (``BkashNoResponse``) leaves the outcome unknown: ask ``refund_status``."""
        amount = format_bdt(amount_poisha)
        if self._paths.refund_api == "v2":
            url = self._paths.refund_v2_base(self._creds.base_url) + self._paths.refund_v2
            body = {"paymentId": payment_id, "trxId": trx_id, "refundAmount": amount, "sku": sku,
                    "reason": reason}
        else:
            url = self._creds.base_url + self._paths.refund
            body = {"paymentID": payment_id, "amount": amount, "trxID": trx_id, "sku": sku,
                    "reason": reason}
        data = await self._refund_call("refund", url, body, payment_id)
        return _parse(RefundTransaction, data, "refund", payment_id)

    async def refund_status(self, *, payment_id: str, trx_id: str) -> RefundStatus:
        """The refunds bKash holds for the transaction (v1: the latest only; none: empty)."""
        if self._paths.refund_api == "v2":
            url = self._paths.refund_v2_base(self._creds.base_url) + self._paths.refund_status_v2
            body = {"paymentId": payment_id, "trxId": trx_id}
        else:
            # §2 row 10: the refund URL, the body without amount, sku and reason.
            url = self._creds.base_url + self._paths.refund
            body = {"paymentID": payment_id, "trxID": trx_id}
        try:
            data = await self._refund_call("refund status", url, body, payment_id)
        except BkashRefundMerchantConfig as err:
            # [OFF] the official plugin's refundStatus docblock: "get status if the transaction is
            # already refunded otherwise invalid payment id will return". A paymentID that is
            # really wrong is refused by the refund itself, with the same 2002.
            if err.code == INVALID_PAYMENT_ID:
                return RefundStatus()
            raise
        entries = data.get("refundTransactions")
        if entries is None:
            entries = [data] if data.get("refundTrxID") or data.get("refundTrxId") else []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise BkashUnexpectedResponse("refund status", "refundTransactions is not a list",
                                          payment_id=payment_id)
        return RefundStatus(
            original_trx_id=data.get("originalTrxID") or data.get("originalTrxId"),
            refunds=[_parse(RefundTransaction, e, "refund status", payment_id) for e in entries])

    async def _refund_call(self, operation: str, url: str, body: dict[str, Any],
                           payment_id: str) -> dict[str, Any]:
        resp, token = await self._send(operation, url, body, payment_id)
        try:
            return _refund_answer(resp, operation, payment_id)
        except BkashRetryableError as err:
            if err.code != INVALID_APP_TOKEN:
                raise
        # 2079 "Invalid app Token": bKash refused the token before acting on the request, so one
        # re-send with a new token cannot refund twice. A second 2079 is left to the caller's retry.
        log.warning("bKash %s %s: 2079 invalid app token; replacing the token once", operation,
                    payment_id)
        resp, _ = await self._send(operation, url, body, payment_id,
                                   token=await self.tokens.replace(token))
        return _refund_answer(resp, operation, payment_id)

    async def _status_call(self, operation: str, path: str, payment_id: str) -> PaymentStatus:
        data = await self._call(operation, path, {"paymentID": payment_id}, payment_id)
        return _parse(PaymentStatus, data, operation, payment_id)

    async def _call(self, operation: str, path: str, body: dict[str, Any],
                    payment_id: str | None) -> dict[str, Any]:
        resp, _ = await self._send(operation, self._creds.base_url + path, body, payment_id)
        if resp.status_code >= 300:
            # The official plugin treats any non-200 as "no reliable answer" and queries (§2.2).
            raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash",
                                  payment_id=payment_id)
        data = json_object(resp, operation, payment_id)
        raise_for_business_error(data, operation, payment_id)
        return data

    async def _send(self, operation: str, url: str, body: dict[str, Any],
                    payment_id: str | None, *, token: str | None = None,
                    ) -> tuple[httpx.Response, str]:
        """POST with the token; the gateway's 401 re-grants once, its 401/403 are configuration."""
        token = token or await self._token(operation, payment_id)
        resp = await self._post(operation, url, body, token, payment_id)
        if resp.status_code == 401:
            # The gateway answered before bKash ran (§2.2), so sending again is safe. Once only.
            token = await self._token(operation, payment_id, rejected=token)
            resp = await self._post(operation, url, body, token, payment_id)
        if resp.status_code == 401:
            raise BkashMerchantConfigError(operation, "bKash rejected a fresh token (HTTP 401): "
                                           "check BKASH_APP_KEY and the credential set",
                                           payment_id=payment_id)
        if resp.status_code == 403:
            raise BkashMerchantConfigError(operation, "bKash answered HTTP 403: the X-App-Key does "
                                           "not match the token's app; check BKASH_APP_KEY",
                                           payment_id=payment_id)
        return resp, token

    async def _token(self, operation: str, payment_id: str | None, *,
                     rejected: str | None = None) -> str:
        """A token for ``operation``, or an error saying the call was not sent: whatever went
        wrong getting the token, ``operation`` itself never reached bKash, so it is no lost
        answer (issue 11 §3); only wrong credentials stay a configuration error."""
        try:
            return await (self.tokens.token() if rejected is None
                          else self.tokens.replace(rejected))
        except (BkashMerchantConfigError, BkashTokenRateLimited) as err:
            raise
        except BkashError as err:
            raise BkashTokenUnavailable(
                operation, f"no bKash token ({err.operation}: {err.provider_message}); the "
                f"{operation} call was not sent", payment_id=payment_id,
                retry_after=timedelta(seconds=5)) from None

    async def _post(self, operation: str, url: str, body: dict[str, Any], token: str,
                    payment_id: str | None) -> httpx.Response:
        # §2.1: the raw id_token, no "Bearer " prefix, plus X-App-Key.
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": token, "X-App-Key": self._creds.app_key}
        started = time.monotonic()
        try:
            resp = await self._http.post(url, json=body, headers=headers, timeout=self._timeout)
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


def _refund_answer(resp: httpx.Response, operation: str, payment_id: str) -> dict[str, Any]:
    """A refund answer's JSON, or the typed error it carries (any of the three envelopes)."""
    if resp.status_code >= 500:
        # A 5xx can follow a refund bKash applied: no reliable answer, resolve by refund status.
        raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash",
                              payment_id=payment_id)
    if resp.status_code in (404, 405):
        raise BkashRefundMerchantConfig(
            operation, f"HTTP {resp.status_code}: bKash does not serve {resp.request.url.path}; "
            "check BKASH_REFUND_API (v1 or v2) and BKASH_REFUND_V2_BASE_URL",
            payment_id=payment_id)
    if resp.status_code >= 300:
        # v2 refuses with HTTP 400 and its error envelope (§9 [3P]); a 4xx without a bKash code
        # is no reliable answer.
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            raise_for_refund_error(data, operation, payment_id)
        raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash",
                              payment_id=payment_id)
    data = json_object(resp, operation, payment_id)
    raise_for_refund_error(data, operation, payment_id)
    return data


def _parse(model: type[_Response], data: dict[str, Any], operation: str,
           payment_id: str | None):
    try:
        return model.model_validate(data)
    except ValueError:
        raise BkashUnexpectedResponse(operation, f"unexpected answer shape for {model.__name__}",
                                      payment_id=payment_id) from None
