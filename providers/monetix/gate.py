"""The Monetix Gate client: sale, clarification, refund and status requests, and how each answer is
read (reference §3; the refund's own rules are in ``refunds``).

What the Gate tells us, and what it does not:
* A sale/clarification answer (HTTP 200, ``status: success``) only says "accepted for processing"
  (§3.3). The payment result comes by callback or by the status request.
* Without a clear answer (5xx, timeout, dropped connection, garbage) the request may or may not have
  been registered. That is :class:`MonetixResultUnknown`: resolve it with :meth:`MonetixGateClient.status`,
  never by re-sending the sale (§3.3, §8.4).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts.monetix_requests import (
    MonetixClarification,
    MonetixSaleRequest,
    check_callback_url,
    check_payment_id,
    clarification_problems,
)
from contracts.monetix_status import (
    CODE_PAYMENT_ID_EXISTS,
    CODE_TRANSACTION_NOT_FOUND,
    MonetixStatus,
    _error_details,
    _text,
)
from providers.monetix.config import MonetixGateConfig
from providers.monetix.errors import (
    MonetixBadSignature,
    MonetixDuplicatePayment,
    MonetixInvalidRequest,
    MonetixPaymentNotFound,
    MonetixRequestRejected,
    MonetixResultUnknown,
    revalidate,
)
from providers.monetix.refunds import MonetixRefunds, refund_body, refund_rejection
from providers.monetix_signing import extract_signature, loads, sign_request, verify

# The logger keeps the name it had before the module became a package, so log configuration holds.
log = logging.getLogger("providers.monetix")

# §6 codes whose rejection text gets a hint about what to fix.
CODE_INVALID_SIGNATURE = "3261"
CODE_EMPTY_SIGNATURE = "3262"
CODE_PROJECT_NOT_FOUND = "2442"
CODE_UNKNOWN_PAYMENT_METHOD = "2541"

_REJECTION_HINTS = {
    CODE_INVALID_SIGNATURE: "check the secret key configured for this project_id",
    CODE_EMPTY_SIGNATURE: "the request was not signed; this is a bug in the client, please report it",
    CODE_PROJECT_NOT_FOUND: "check MonetixGateConfig.project_id",
    CODE_UNKNOWN_PAYMENT_METHOD:
        "bKash may not be enabled for this project, or sale_path is wrong; ask Monetix",
}


class MonetixAck(BaseModel):
    """Gate accepted the request for processing (§3.3). Not a payment result.

    ``request_id`` matches ``operation.request_id`` in later callbacks; it is None only if Monetix
    omitted it from an otherwise successful answer.
    """

    model_config = ConfigDict(frozen=True)

    request_id: str | None
    payment_id: str


class _Answer(NamedTuple):
    http_status: int
    data: Mapping[str, Any]
    sent_signature: str  # kept only to scrub it from error texts


class MonetixGateClient:
    """Async Gate client over a shared ``httpx.AsyncClient`` (connection pooling is the caller's)."""

    def __init__(self, http: httpx.AsyncClient, config: MonetixGateConfig) -> None:
        self._http = http
        self._config = config

    def __repr__(self) -> str:
        return f"MonetixGateClient(base_url={self._config.base_url!r}, project_id={self._config.project_id})"

    async def sale(self, req: MonetixSaleRequest, callback_url: str) -> MonetixAck:
        """Start a bKash purchase (seed, "Request"). The answer is an acknowledgement only; the
        payment instructions (``display_data``) and the result come by callback or status."""
        req = revalidate(MonetixSaleRequest, req, getattr(req, "payment_id", None))
        try:
            check_callback_url(callback_url, "general.merchant_callback_url")
        except ValueError as exc:
            raise MonetixInvalidRequest([str(exc)], payment_id=req.payment_id) from None
        body: dict[str, Any] = {
            "general": {
                "project_id": self._config.project_id,
                "payment_id": req.payment_id,
                "merchant_callback_url": callback_url,
            },
            "customer": req.customer.model_dump(),
            "payment": {"currency": req.currency, "amount": req.amount_poisha},
        }
        if req.account_number is not None:
            body["account"] = {"number": req.account_number}
        if req.description is not None:
            body["payment"]["description"] = req.description
        return self._ack(await self._post("sale", self._config.sale_path, req.payment_id, body), req.payment_id, "sale")

    async def clarification(self, payment_id: str, additional_data: dict[str, str]) -> MonetixAck:
        """Send what Monetix asked for, for bKash the customer's transaction ID (seed, "Submitting the
        transaction ID"). The result still comes by callback or status."""
        try:
            clar = MonetixClarification(payment_id=payment_id, fields=additional_data)
        except ValidationError as exc:
            raise MonetixInvalidRequest.from_validation_error(
                exc, payment_id=payment_id if isinstance(payment_id, str) else None
            ) from None
        body = {
            "general": {"project_id": self._config.project_id, "payment_id": clar.payment_id},
            "additional_data": dict(clar.fields),
        }
        answer = await self._post("clarification", self._config.clarification_path, clar.payment_id, body)
        return self._ack(answer, clar.payment_id, "clarification")

    async def clarify_fields(self, payment_id: str, fields: Mapping[str, Any]) -> MonetixAck:
        """Answer an ``awaiting clarification`` callback: ``fields`` mirrors its clarification_fields,
        e.g. ``{"account": {"number": "01712345678"}}`` (§3.5: the keys mirror request objects)."""
        problems = clarification_problems(fields)
        try:
            check_payment_id(payment_id, "general.payment_id")
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise MonetixInvalidRequest(problems, payment_id=payment_id if isinstance(payment_id, str) else None)
        body = {"general": {"project_id": self._config.project_id, "payment_id": payment_id}, **fields}
        answer = await self._post("clarification", self._config.clarification_path, payment_id, body)
        return self._ack(answer, payment_id, "clarification")

    async def refund(self, payment_id: str, amount_poisha: int, currency: str, description: str,
                     merchant_refund_id: str, callback_url: str | None = None) -> MonetixAck:
        """Refund (part of) the purchase ``payment_id`` (§3.6: general.payment_id is the *original*
        payment's). The answer only acknowledges; the result comes by a callback with
        ``operation.type = "refund"`` (matched by ``request_id``) or from :meth:`refund_status`.

        Raises :class:`~providers.monetix.refunds.MonetixDuplicateRefund` for 3230 (already
        registered: resolve by status), :class:`~providers.monetix.refunds.MonetixRefundOverLimit`
        for 3283, and the usual rejected / result-unknown / invalid-request errors.
        """
        body = refund_body(self._config.project_id, payment_id=payment_id, amount_poisha=amount_poisha,
                           currency=currency, description=description,
                           merchant_refund_id=merchant_refund_id, callback_url=callback_url)
        answer = await self._post("refund", self._config.refund_path, payment_id, body)
        try:
            return self._ack(answer, payment_id, "refund")
        except MonetixRequestRejected as err:
            raise refund_rejection(err) from None

    async def refund_status(self, payment_id: str) -> MonetixRefunds:
        """The status request (§3.4) read for refunds: the purchase's refund operations, its status
        (``partially refunded`` / ``refunded``) and what is left of it. Find our refund with
        :meth:`MonetixRefunds.find`. Raises as :meth:`status` does."""
        snapshot, data = await self._status_answer(payment_id)
        try:
            return MonetixRefunds.from_body(data, snapshot)
        except (ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise MonetixResultUnknown(payment_id=payment_id, operation="status", reason=reason) from None

    async def status(self, payment_id: str) -> MonetixStatus:
        """Ask Monetix where the payment stands (§3.4). Monetix asks for at least 10 s after the sale;
        that pacing is the caller's (a workflow timer), not this client's.

        Raises :class:`MonetixPaymentNotFound` for code 3061, :class:`MonetixBadSignature` when a signed
        answer does not verify. An unsigned answer is accepted with ``signature_verified=False``.
        """
        return (await self._status_answer(payment_id))[0]

    async def _status_answer(self, payment_id: str) -> tuple[MonetixStatus, Mapping[str, Any]]:
        try:
            check_payment_id(payment_id, "general.payment_id")
        except ValueError as exc:
            raise MonetixInvalidRequest([str(exc)]) from None
        body = {"general": {"project_id": self._config.project_id, "payment_id": payment_id}}
        answer = await self._post("status", self._config.status_path, payment_id, body)
        http_status, data, _ = answer

        verified = False
        if extract_signature(data) is not None:
            if not verify(data, self._config.secret_key.get_secret_value()):
                raise MonetixBadSignature(payment_id=payment_id, operation="status")
            verified = True
        if _has_code(data, CODE_TRANSACTION_NOT_FOUND):
            raise MonetixPaymentNotFound(payment_id, _message_for(data, CODE_TRANSACTION_NOT_FOUND))
        if http_status != 200 or data.get("status") == "error":
            raise self._rejected(answer, payment_id, "status")
        try:
            snapshot = MonetixStatus.from_body(data, signature_verified=verified)
        except (ValueError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise MonetixResultUnknown(payment_id=payment_id, operation="status", reason=reason) from None
        if snapshot.payment_id != payment_id:
            raise MonetixResultUnknown(
                payment_id=payment_id,
                operation="status",
                reason=f"the answer describes another payment ({snapshot.payment_id})",
            )
        return snapshot, data

    # -- plumbing --------------------------------------------------------------------------------

    async def _post(
        self, operation: str, path: str, payment_id: str, body: dict[str, Any]
    ) -> _Answer:
        """Sign and POST; return the HTTP status and parsed JSON object of a 2xx or 4xx answer.

        Everything that leaves the outcome open becomes MonetixResultUnknown here (§3.3).
        """
        signed = sign_request(body, self._config.secret_key.get_secret_value())
        url = self._config.base_url.rstrip("/") + path

        def unknown(reason: str) -> MonetixResultUnknown:
            return MonetixResultUnknown(payment_id=payment_id, operation=operation, reason=reason)

        try:
            resp = await self._http.post(
                url,
                json=signed,
                headers={"Accept": "application/json"},
                timeout=self._config.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise unknown(f"no answer within {self._config.timeout_seconds:g} s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            # Dropped or refused connections: we cannot tell whether the body reached Monetix.
            raise unknown(f"connection failed: {type(exc).__name__}") from None
        log.debug("monetix %s payment_id=%s -> HTTP %s", operation, payment_id, resp.status_code)

        # 408/429 mean "not now" rather than "no"; 5xx may have happened after the work was done.
        if resp.status_code >= 500 or resp.status_code in (408, 429):
            raise unknown(f"HTTP {resp.status_code} from Monetix")
        try:
            data = loads(resp.content)
        except ValueError:
            data = None
        if not isinstance(data, Mapping):
            if 400 <= resp.status_code < 500:
                hint = (
                    "is this server's IP allow-listed at Monetix (§1)?" if resp.status_code == 403 else ""
                )
                raise MonetixRequestRejected(
                    payment_id=payment_id,
                    operation=operation,
                    http_status=resp.status_code,
                    code=None,
                    message=f"HTTP {resp.status_code} without a JSON body",
                    hint=hint,
                )
            raise unknown(f"HTTP {resp.status_code} with a body that is not a JSON object ({len(resp.content)} bytes)")
        if not (200 <= resp.status_code < 300 or 400 <= resp.status_code < 500):
            raise unknown(f"unexpected HTTP {resp.status_code}")
        return _Answer(resp.status_code, data, signed["general"]["signature"])

    def _ack(self, answer: _Answer, payment_id: str, operation: str) -> MonetixAck:
        http_status, data, sent_signature = answer
        if http_status == 200 and data.get("status") == "success":
            echoed = _text(data.get("payment_id"))
            if echoed is not None and echoed != payment_id:
                raise MonetixResultUnknown(
                    payment_id=payment_id,
                    operation=operation,
                    reason=f"the acknowledgement names another payment ({echoed})",
                )
            return MonetixAck(request_id=_text(data.get("request_id")), payment_id=payment_id)
        if http_status >= 400 or data.get("status") == "error" or data.get("errors"):
            raise self._rejected(answer, payment_id, operation)
        raise MonetixResultUnknown(
            payment_id=payment_id,
            operation=operation,
            reason=f"HTTP {http_status} with status {_text(data.get('status'))!r} instead of 'success'",
        )

    def _rejected(self, answer: _Answer, payment_id: str, operation: str) -> MonetixRequestRejected:
        http_status, data, sent_signature = answer
        code = _text(data.get("code"))
        details = [d.model_dump(exclude_none=True) for d in _error_details(data.get("errors"))]
        if code is None and details:
            code = details[0].get("code")
        message = _text(data.get("message")) or (details[0].get("message") if details else None) or ""

        def scrub(text: str) -> str:
            # Belt and braces: a platform message that echoes our key or signature must not reach logs
            # or workflow history.
            for secret in (self._config.secret_key.get_secret_value(), sent_signature):
                if secret:
                    text = text.replace(secret, "***")
            return text

        details = [{k: scrub(v) for k, v in d.items()} for d in details]
        if operation == "sale" and _has_code(data, CODE_PAYMENT_ID_EXISTS):
            return MonetixDuplicatePayment(
                payment_id=payment_id,
                operation=operation,
                http_status=http_status,
                code=CODE_PAYMENT_ID_EXISTS,
                message=scrub(message),
                errors=details,
                hint="an earlier sale with this payment_id was registered (perhaps its answer was lost); "
                "resolve with the status request, do not treat this as a decline",
            )
        hint = _REJECTION_HINTS.get(code or "", "")
        return MonetixRequestRejected(
            payment_id=payment_id,
            operation=operation,
            http_status=http_status,
            code=code,
            message=scrub(message),
            errors=details,
            hint=hint,
        )


def _has_code(data: Mapping[str, Any], code: str) -> bool:
    if _text(data.get("code")) == code:
        return True
    return any(d.code == code for d in _error_details(data.get("errors")))


def _message_for(data: Mapping[str, Any], code: str) -> str:
    for d in _error_details(data.get("errors")):
        if d.code == code and d.message:
            return d.message
    return _text(data.get("message")) or "Transaction not found"
