"""bKash Tokenized Checkout client (Auth & Capture): pure httpx + pydantic, no Temporal.

Facts and their sources are in ../shared/reference/bkash-api.md; section numbers are cited where a
quirk matters. One ``BkashClient`` per credential set, sharing the worker's ``httpx.AsyncClient``.
Tokens (grant, refresh, budget, stores) are ``providers.bkash_tokens``; credentials and paths
``providers.bkash_config``; codes ``providers.bkash_codes``; errors ``providers.bkash_errors``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from contracts.bkash import TransactionStatus
from contracts.money import format_bdt
from providers.bkash_codes import MODE_CHECKOUT_URL
from providers.bkash_config import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, BkashCredentials, BkashPaths
from providers.bkash_errors import (
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashUnexpectedResponse,
    json_object,
    raise_for_business_error,
)
from providers.bkash_tokens import FileTokenStore, InMemoryTokenStore, TokenManager, TokenState, TokenStore

# Re-exported: callers import the credentials, paths and token stores from here.
__all__ = [
    "PRODUCTION_BASE_URL", "SANDBOX_BASE_URL", "BkashClient", "BkashCredentials", "BkashPaths",
    "CreatedPayment", "FileTokenStore", "InMemoryTokenStore", "PaymentStatus", "RefundResult",
    "TokenManager", "TokenState", "TokenStore", "TransactionDetails",
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


class RefundResult(_Response):
    original_trx_id: str | None = Field(default=None, validation_alias="originalTrxID")
    refund_trx_id: str | None = Field(default=None, validation_alias="refundTrxID")
    transaction_status: str = Field(validation_alias="transactionStatus")
    amount: str | None = None


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
        data = json_object(resp, operation, payment_id)
        raise_for_business_error(data, operation, payment_id)
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


def _parse(model: type[_Response], data: dict[str, Any], operation: str,
           payment_id: str | None):
    try:
        return model.model_validate(data)
    except ValueError:
        raise BkashUnexpectedResponse(operation, f"unexpected answer shape for {model.__name__}",
                                      payment_id=payment_id) from None
