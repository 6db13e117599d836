"""Response codes the sandbox uses, with the registry's wording (reference §6). Codes travel as
strings (`"code": "0"`), as in every callback the docs show."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "0": "Success",
    "502": "Validation error",
    "2003": "Invalid JSON",
    "2004": "Required field not provided",
    "2442": "Project ID not found",
    "2541": "Unknown Payment Method",
    "3023": "Provided currency disabled for Project ID",
    "3041": "Payment ID already exists",
    "3060": "Payment status does not allow this action",
    "3061": "Transaction not found",
    "3191": "Need clarification",
    "3230": "Duplicate merchant_refund_id",
    "3261": "Invalid signature",
    "3262": "Empty signature",
    "3283": "Refund amount is greater than the initial payment amount",
    "3284": "Refund currency does not match the payment currency",
    "9999": "Awaiting processing",
    "20000": "General decline",
    "20105": "Insufficient funds on customer account",
    "20301": "Account owner cancelled the operation",
    "20304": "Incorrect amount paid",
    "20602": "Time-out",
}

SUCCESS = "0"
# Codes an intermediate callback carries. The reference's illustrative `awaiting customer` callback
# (§4.2, vector X2) says "0"/"Success"; for `awaiting clarification` the registry has 3191 "Need
# clarification", which §6 lists among the codes a simulator needs. Both are inferred [I]: the
# merchant must decide on payment.status, never on an intermediate code.
AWAITING_CUSTOMER = "0"
AWAITING_CLARIFICATION = "3191"
# A refund the provider has not answered yet (§6: 9999 "Awaiting processing", intermediate).
AWAITING_PROCESSING = "9999"
# How a `decline` fault declines a refund unless it names a code: the wallet provider's general
# decline (§6, 2xxxx range) [I: the platform's refund decline codes are not documented].
REFUND_DECLINE = "20000"
# Decline codes a test may ask for when completing a Payment Page payment.
PAGE_DECLINE_CODES = frozenset({"20000", "20105", "20301", "20304", "20602"})


def message(code: str) -> str:
    return MESSAGES.get(code, "Sandbox-injected error")


class GateError(Exception):
    """A refused Gate request: HTTP 400 with the §3.3 error body [I shape]. ``field`` names the
    offending request field (dotted, as in the docs) when there is one."""

    def __init__(self, code: str, *, field: str | None = None, detail: str | None = None,
                 fields: list[str] | None = None) -> None:
        self.code = code
        self.fields = fields if fields is not None else ([field] if field else [])
        self.detail = detail
        super().__init__(f"{code} {message(code)}" + (f": {detail}" if detail else ""))

    def errors(self) -> list[dict[str, str]]:
        text = self.detail or message(self.code)
        if not self.fields:
            return [{"code": self.code, "message": text}]
        return [{"code": self.code, "field": f, "message": self.detail or f"{message(self.code)}: {f}"}
                for f in self.fields]
