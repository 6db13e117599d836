"""Monetix failures, classified by what the caller must do about them (reference §3.3, §6).

Every error's ``kind`` is a :class:`contracts.monetix.MonetixErrorKind`: the activities use it as the
Temporal error type, so it is stable.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from contracts.monetix import MonetixErrorKind
from contracts.monetix_requests import problem_text
from contracts.monetix_status import CODE_TRANSACTION_NOT_FOUND


class MonetixError(Exception):
    """Base of every Monetix failure. ``kind`` is stable: activities use it as the Temporal error type.

    Messages say what happened, to which payment, and what to do. They never contain the secret key
    or a signature: the client scrubs both from anything the platform echoes back.
    """

    kind: ClassVar[str] = MonetixErrorKind.GENERIC

    def __init__(self, message: str, *, payment_id: str | None = None) -> None:
        self.payment_id = payment_id
        super().__init__(message)


class MonetixInvalidRequest(MonetixError):
    """The request broke a Monetix rule and was not sent. Fix the data; retrying cannot help."""

    kind: ClassVar[str] = MonetixErrorKind.INVALID_REQUEST

    def __init__(self, problems: list[str], *, payment_id: str | None = None) -> None:
        self.problems = list(problems)
        where = f" for payment {payment_id}" if payment_id else ""
        super().__init__(
            f"Monetix request{where} not sent: " + "; ".join(self.problems), payment_id=payment_id
        )

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, *, payment_id: str | None = None
    ) -> MonetixInvalidRequest:
        """Turn a pydantic error from one of the request models into merchant words."""
        return cls([problem_text(err) for err in exc.errors()], payment_id=payment_id)


class MonetixRequestRejected(MonetixError):
    """Monetix answered and refused the request (4xx, or ``status: error``). Non-retryable as is.

    ``message`` carries the platform's own words; ``code`` is the §6 code when the platform gave one.
    """

    kind: ClassVar[str] = MonetixErrorKind.REQUEST_REJECTED

    def __init__(
        self,
        *,
        payment_id: str,
        operation: str,
        http_status: int,
        code: str | None,
        message: str,
        errors: list[dict[str, str]] | None = None,
        hint: str = "",
    ) -> None:
        self.operation = operation
        self.http_status = http_status
        self.code = code
        self.platform_message = message
        self.errors = list(errors or [])
        details = "; ".join(
            ": ".join(x for x in (e.get("field"), e.get("code"), e.get("message")) if x) for e in self.errors
        )
        text = f"Monetix rejected the {operation} for payment {payment_id} (HTTP {http_status}"
        text += f", code {code}" if code else ""
        text += f"): {message or 'no message'}"
        text += f" [{details}]" if details else ""
        text += f"; {hint}" if hint else ""
        super().__init__(text, payment_id=payment_id)


class MonetixDuplicatePayment(MonetixRequestRejected):
    """Code 3041 on a sale: this payment_id is already registered (§3.1), e.g. by an earlier attempt
    whose answer was lost. Not a decline: resolve with the status request."""

    kind: ClassVar[str] = MonetixErrorKind.DUPLICATE_PAYMENT


class MonetixPaymentNotFound(MonetixError):
    """Code 3061 from the status request: Monetix has no payment with this payment_id (§3.4)."""

    kind: ClassVar[str] = MonetixErrorKind.PAYMENT_NOT_FOUND

    def __init__(self, payment_id: str, message: str = "Transaction not found") -> None:
        self.platform_message = message
        super().__init__(
            f"Monetix has no payment {payment_id} (code {CODE_TRANSACTION_NOT_FOUND}: {message}); the "
            "sale was never registered, so it is safe to send it (once) with this payment_id",
            payment_id=payment_id,
        )


class MonetixResultUnknown(MonetixError):
    """No usable answer (5xx, timeout, dropped connection, unreadable body): the request may or may
    not have taken effect (§3.3)."""

    kind: ClassVar[str] = MonetixErrorKind.RESULT_UNKNOWN

    _WHAT_TO_DO: ClassVar[dict[str, str]] = {
        "sale": "resolve with the status request (at least 10 s later, §3.4), do not re-send the sale",
        "clarification": "resolve with the status request before sending the transaction ID again",
        "status": "the status request changes nothing at Monetix and may be repeated",
    }

    def __init__(self, *, payment_id: str, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        todo = self._WHAT_TO_DO.get(operation, "resolve with the status request")
        super().__init__(
            f"Monetix {operation} for payment {payment_id}: result unknown ({reason}); {todo}",
            payment_id=payment_id,
        )


class MonetixBadSignature(MonetixResultUnknown):
    """A status answer whose signature does not verify with our secret key.

    A subclass of :class:`MonetixResultUnknown` on purpose: nothing in that answer may be trusted, so
    the state of the payment is still unknown. Usual cause: the wrong project's secret key (test and
    production are separate projects, §1), or something rewriting the response.
    """

    kind: ClassVar[str] = MonetixErrorKind.BAD_SIGNATURE

    def __init__(self, *, payment_id: str, operation: str) -> None:
        super().__init__(
            payment_id=payment_id,
            operation=operation,
            reason="the answer's signature does not match our secret key: check MONETIX secret key and "
            "project_id, nothing in the answer was used",
        )


def revalidate(model: type[BaseModel], value: Any, payment_id: Any) -> Any:
    """Validate again at the door: ``model_construct`` or a plain dict must not slip past the rules."""
    try:
        if isinstance(value, model):
            return model.model_validate(value.model_dump())
        return model.model_validate(value)
    except ValidationError as exc:
        raise MonetixInvalidRequest.from_validation_error(
            exc, payment_id=payment_id if isinstance(payment_id, str) else None
        ) from None
