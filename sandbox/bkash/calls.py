"""Every Tokenized Checkout call the sandbox received, by operation, paymentID and invoice.

bKash's UAT checks the calls themselves, not only the money: a Query Payment after a successful
execute fails a merchant's UAT (reference §12), and a capture or void sent twice is a bug even when
bKash refuses the second. A call is counted as it arrives, before the gateway check, faults and
business rules, so a call whose answer a fault broke (or that bKash refused) still counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .faults import Operation, Target

# The API calls (the hosted page is the customer's, not the merchant's).
API_OPERATIONS = tuple(op for op in Operation if op is not Operation.PAGE)


@dataclass(frozen=True)
class _Call:
    operation: Operation
    payment_id: str | None
    invoice: str | None


class CallCounter:
    def __init__(self) -> None:
        self._calls: Counter[_Call] = Counter()

    def count(self, operation: Operation, target: Target, body: dict | None) -> None:
        """``target`` is the payment the call is about as the sandbox knows it; a paymentID the
        sandbox does not know is still counted under that paymentID. create carries no paymentID
        yet: it is counted under its merchantInvoiceNumber only."""
        payment_id = target.payment_id
        if payment_id is None and isinstance((body or {}).get("paymentID"), str):
            payment_id = body["paymentID"]  # type: ignore[index]
        self._calls[_Call(operation, payment_id, target.invoice)] += 1

    def view(self, payment_id: str | None = None, invoice: str | None = None) -> dict[str, int]:
        """Calls per operation (every operation present, 0 when never called), narrowed to one
        paymentID and/or one invoice."""
        totals = {op.value: 0 for op in API_OPERATIONS}
        for call, n in self._calls.items():
            if (payment_id is None or call.payment_id == payment_id) \
                    and (invoice is None or call.invoice == invoice):
                totals[call.operation.value] += n
        return totals
