"""The platform's rules for a bKash purchase: payments' statuses (reference §4.3), the customer's bKash
transfers, the ledger of money movements, and the callbacks and status answers each step produces
(what is remembered is model.py's; refunds are refunds.py's). No HTTP here: callers get a body or a
GateError / ActionError.

The purchase (seed, "Purchase by using Gate", steps 2-15):

    sale ─▶ [awaiting clarification] ─ clarification{account.number} ─▶ [awaiting customer]
         └──────────────── account.number given ───────────────────────▶ [awaiting customer]
    [awaiting customer] ─ customer pays in bKash, merchant sends additional_data.transaction_id ─▶
        success (0) | decline (20000 unknown trxID, 20105 insufficient funds, 20304 amount changed)
    no transaction ID within clarification_timeout_seconds ─▶ decline (20602 Time-out)

Each arrow into a status emits one signed callback. Payment Page payments (§5) start in
[awaiting customer] on the page and emit only their final callback (§5.4: the page handles
clarification with the customer itself). A paid purchase may then be refunded, in part or in full,
any number of times (refunds.py): success ─▶ partially refunded ─▶ refunded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from providers.monetix_signing import sign, verify
from sandbox.common.faults import FaultBook

from . import codes
from .callbacks import CallbackOutbox, Delivery
from .codes import GateError
from .config import MonetixSandboxConfig
from .faults import Target
from .formats import OperationIds, amount_text, monetix_time, new_trx_id
from .model import (
    ActionError,
    Channel,
    Clarification,
    CustomerPayment,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentStatus,
    Refund,
    field_value,
    missing as _missing,
    parse_project_id,
)
from .refunds import RefundRules, refund_operation

# Callers import these from here, where they lived before model.py.
__all__ = ["ActionError", "Channel", "LedgerKind", "MonetixSandbox", "Payment", "PaymentStatus",
           "field_value", "parse_project_id"]

# The bKash sandbox's insufficient-balance wallet (bKash reference §13, code 2023 there); here the
# final callback declines with 20105 "insufficient funds on customer account" (§6).
INSUFFICIENT_BALANCE_WALLET = "01823074817"
# The payer when neither the request nor the test names one: a regular bKash sandbox wallet.
DEFAULT_WALLET = "01770618575"
# Seed, Table 2: "Customer account number, up to 12 digits, only numeric".
_ACCOUNT = re.compile(r"^[0-9]{1,12}$")
# §3.5: the clarification_fields schema was not visible [I]. Modelled as §3.5 suggests: keys mirror the
# request object to send back, each leaf a JSON-schema-like requirement.
ACCOUNT_CLARIFICATION_FIELDS = {"account": {"number": {"type": "string", "pattern": "^[0-9]{1,12}$"}}}
# Seed, Table 2 ("strictly required") plus general.payment_id.
_SALE_REQUIRED = ("general.payment_id", "customer.id", "customer.ip_address", "customer.first_name",
                  "customer.last_name", "customer.email", "payment.amount", "payment.currency")
# Seed, Table 1 ("strictly required") for the Payment Page, minus project_id and signature.
_PAGE_REQUIRED = ("payment_id", "customer_id", "customer_first_name", "customer_last_name",
                  "customer_email", "payment_currency", "payment_amount")
# Seed, "Special considerations": whole BDT, a multiple of 10.00 BDT, in poisha.
AMOUNT_STEP = 1000


def _check_amount(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % AMOUNT_STEP:
        # §6 502 "Validation error": the registry has no code for "not a multiple of 10 BDT" [I].
        raise GateError("502", field=name, detail=(
            f"{name} {value!r} must be a positive integer number of poisha, a multiple of {AMOUNT_STEP} "
            "(whole BDT, multiple of 10.00 BDT: seed, Special considerations)"))
    return value


def _check_account(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _ACCOUNT.match(value):
        raise GateError("502", field=name, detail=f"{name} must be up to 12 digits, only numeric (seed, Table 2)")
    return value


def _without_signature(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_signature(v) for k, v in value.items() if k != "signature"}
    if isinstance(value, list):
        return [_without_signature(v) for v in value]
    return value


class MonetixSandbox(RefundRules):
    def __init__(self, config: MonetixSandboxConfig, clock: Callable[[], float],
                 http: httpx.AsyncClient | None) -> None:
        self.config = config
        self.clock = clock
        self.faults = FaultBook()
        self.ids = OperationIds()
        self.outbox = CallbackOutbox(config, clock, self.faults, http)
        self._trx_ids: set[str] = set()
        self.reset()

    def reset(self) -> None:
        self.outbox.reset()
        self.faults.clear()
        self.payments: dict[tuple[int, str], Payment] = {}
        self.ledger: list[LedgerEntry] = []
        self._trx_ids.clear()
        self.counters: dict[str, int] = {
            "sale_requests": 0, "clarification_requests": 0, "status_requests": 0,
            "payment_page_opened": 0, "early_status_requests": 0, "invalid_signature_requests": 0,
            "empty_signature_requests": 0, "refund_requests": 0}
        self.rejections: dict[str, int] = {}

    # --- lookups and authentication -------------------------------------------------------------

    def find(self, project_id: int | None, payment_id: Any) -> Payment | None:
        if project_id is None or not isinstance(payment_id, str):
            return None
        return self.payments.get((project_id, payment_id))

    def key(self, project_id: int) -> str:
        return self.config.projects[project_id]

    def reject(self, error: GateError) -> GateError:
        self.rejections[error.code] = self.rejections.get(error.code, 0) + 1
        if error.code == "3261":
            self.counters["invalid_signature_requests"] += 1
        elif error.code == "3262":
            self.counters["empty_signature_requests"] += 1
        return error

    def authenticate(self, body: Mapping[str, Any] | None) -> int:
        """The project of a signed Gate request (§2.1 "Gate request": signature in general.signature
        over the whole body without it), or a GateError: 2003, 2004, 2442, 3262, 3261."""
        if body is None:
            raise GateError("2003", detail="the request body is not a JSON object")
        raw = field_value(body, "general.project_id")
        if raw is None:
            raise GateError("2004", field="general.project_id")
        project_id = parse_project_id(raw)
        if project_id is None or project_id not in self.config.projects:
            raise GateError("2442", field="general.project_id")
        signature = field_value(body, "general.signature")
        if not isinstance(signature, str) or not signature:
            raise GateError("3262", field="general.signature")
        if not verify(body, self.key(project_id)):
            raise GateError("3261", field="general.signature")
        return project_id

    def expire_due(self) -> None:
        """Decline, with 20602 "Time-out", payments still waiting for clarification data or a
        transaction ID past their deadline (§3.5: the platform waits 30 minutes [D]; the decline
        after it is inferred [I]). Evaluated lazily on every request, and by the served app's ticker,
        so an injected clock is enough to drive it."""
        now = self.clock()
        for p in self.payments.values():
            if not p.status.final and now >= p.deadline:
                self._decline(p, "20602")
        self.complete_due_refunds()

    # --- Gate -------------------------------------------------------------------------------------

    def sale(self, body: Mapping[str, Any], project_id: int, request_id: str) -> dict:
        self.counters["sale_requests"] += 1
        missing = [name for name in _SALE_REQUIRED if _missing(field_value(body, name))]
        if missing:
            raise GateError("2004", fields=missing)
        payment_id = field_value(body, "general.payment_id")
        if not isinstance(payment_id, str):
            raise GateError("502", field="general.payment_id", detail="general.payment_id must be a string")
        account = field_value(body, "account.number")
        if account is not None:
            account = _check_account(account, "account.number")
        if field_value(body, "payment.currency") != "BDT":
            raise GateError("3023", field="payment.currency", detail="bKash purchases are in BDT only")
        amount = _check_amount(field_value(body, "payment.amount"), "payment.amount")
        if (project_id, payment_id) in self.payments:
            raise GateError("3041", field="general.payment_id")
        callback_url = field_value(body, "general.merchant_callback_url") or self.config.default_callback_url
        description = field_value(body, "payment.description")
        # §4.1: `callback.delay` (seconds, max 600) delays sending the callbacks [D].
        delay = field_value(body, "callback.delay")
        delay = float(min(max(delay, 0), 600)) if isinstance(delay, int) and not isinstance(delay, bool) else 0.0
        p = self._new_payment(project_id, payment_id, Channel.GATE, amount, str(field_value(body, "customer.id")),
                              description if isinstance(description, str) else "",
                              callback_url if isinstance(callback_url, str) else None, request_id)
        p.callback_delay_seconds = delay
        if account is not None:
            p.account_number = account
            self._await_customer(p)
        else:
            # Seed, Table 2: account.number is "required" but may be omitted; the platform then asks
            # for it with a callback listing the missing parameters (§3.5).
            self._await_clarification(p)
        return self.ack(p.project_id, p.payment_id, request_id)

    def clarification(self, body: Mapping[str, Any], project_id: int, request_id: str) -> dict:
        self.counters["clarification_requests"] += 1
        payment_id = field_value(body, "general.payment_id")
        if _missing(payment_id):
            raise GateError("2004", field="general.payment_id")
        p = self.find(project_id, payment_id)
        if p is None:
            raise GateError("3061", field="general.payment_id")
        record = Clarification(self.clock(), request_id, _without_signature(body))
        transaction_id = field_value(body, "additional_data.transaction_id")
        record.transaction_id = transaction_id if isinstance(transaction_id, str) else None
        p.clarifications.append(record)
        try:
            self._clarify(p, body, record)
        except GateError as error:
            record.code = error.code
            raise
        record.accepted = True
        return self.ack(p.project_id, p.payment_id, request_id)

    def _clarify(self, p: Payment, body: Mapping[str, Any], record: Clarification) -> None:
        transaction_id = field_value(body, "additional_data.transaction_id")
        if isinstance(transaction_id, str) and transaction_id in p.submitted_transaction_ids:
            raise GateError("3060", field="additional_data.transaction_id", detail=(
                f"transaction ID {transaction_id} was already submitted for payment {p.payment_id}"))
        if p.status is PaymentStatus.AWAITING_CLARIFICATION:
            number = field_value(body, "account.number")
            if _missing(number):
                raise GateError("2004", field="account.number",
                                detail="the platform asked for account.number (clarification_fields)")
            record.account_number = p.account_number = _check_account(number, "account.number")
            self._await_customer(p)
        elif p.status is PaymentStatus.AWAITING_CUSTOMER and p.channel is Channel.GATE:
            if _missing(transaction_id):
                raise GateError("2004", field="additional_data.transaction_id",
                                detail="send the transaction ID the customer got from bKash (seed, Table 3)")
            if not isinstance(transaction_id, str):
                raise GateError("502", field="additional_data.transaction_id",
                                detail="additional_data.transaction_id must be a string")
            self._decide(p, transaction_id)
        else:
            where = "on the Payment Page" if p.channel is Channel.PAYMENT_PAGE else p.status.value
            raise GateError("3060", detail=f"payment {p.payment_id} is {where}; nothing to clarify")

    def status(self, body: Mapping[str, Any], project_id: int) -> dict:
        """§3.4: a signed snapshot with ``operations[]``, or 3061 (HTTP 200 either way)."""
        self.counters["status_requests"] += 1
        payment_id = field_value(body, "general.payment_id")
        if _missing(payment_id):
            raise GateError("2004", field="general.payment_id")
        p = self.find(project_id, payment_id)
        if p is None:
            # §3.4 [T]: two independent re-implementations answer this, signed, with HTTP 200.
            data: dict[str, Any] = {"payment": {"status": "error"},
                                    "errors": [{"code": "3061", "message": codes.message("3061")}]}
            data["signature"] = sign(data, self.key(project_id), order=self.config.signature_order)
            return data
        p.status_requests += 1
        if self.clock() - p.created_at < self.config.min_status_delay_seconds:
            p.early_status_requests += 1
            self.counters["early_status_requests"] += 1
        return self.signed_body(p, status_answer=True)

    @staticmethod
    def ack(project_id: int, payment_id: str, request_id: str) -> dict:
        # §3.3: "accepted for processing", never a payment result.
        return {"status": "success", "request_id": request_id, "project_id": project_id, "payment_id": payment_id}

    # --- the customer in bKash ----------------------------------------------------------------------

    def customer_pays(self, project_id: int, payment_id: str, amount: Any = None, wallet: Any = None) -> str:
        """The customer sends money to the receiver account in their bKash app (seed steps 8-9) and
        gets a transaction ID. A different amount models §4.5; the insufficient-balance wallet gets a
        transaction ID too [I: real bKash would refuse the transfer] so the merchant's flow reaches
        the 20105 decline."""
        p = self.find(project_id, payment_id)
        if p is None:
            raise ActionError(404, f"no payment {payment_id} in project {project_id}")
        if p.channel is Channel.PAYMENT_PAGE:
            raise ActionError(409, f"payment {payment_id} is a Payment Page payment; complete it on the page")
        if p.status.final:
            raise ActionError(409, f"payment {payment_id} already ended {p.status.value}")
        if p.status is not PaymentStatus.AWAITING_CUSTOMER:
            raise ActionError(409, f"payment {payment_id} is {p.status.value}: the customer has no payment "
                                   "instructions yet (the merchant must send account.number first)")
        cp = self._transfer(p, amount, wallet)
        return cp.transaction_id

    def new_trx_id(self) -> str:
        """A bKash transaction ID no other transfer or refund of this sandbox has."""
        transaction_id = new_trx_id()
        while transaction_id in self._trx_ids:
            transaction_id = new_trx_id()
        self._trx_ids.add(transaction_id)
        return transaction_id

    def _transfer(self, p: Payment, amount: Any, wallet: Any) -> CustomerPayment:
        amount = p.amount if amount is None else amount
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ActionError(422, f"amount {amount!r} must be a positive integer number of poisha")
        wallet = wallet if wallet is not None else (p.account_number or DEFAULT_WALLET)
        if not isinstance(wallet, str) or not _ACCOUNT.match(wallet):
            raise ActionError(422, f"wallet {wallet!r} must be a bKash account number, up to 12 digits")
        transaction_id = self.new_trx_id()
        cp = CustomerPayment(transaction_id, amount, wallet, self.clock(), wallet == INSUFFICIENT_BALANCE_WALLET)
        p.customer_payments.append(cp)
        if not cp.insufficient_balance:
            self._record(LedgerKind.CUSTOMER_PAID, p, amount, transaction_id, wallet)
        return cp

    # --- Payment Page -------------------------------------------------------------------------------

    def open_payment_page(self, params: Mapping[str, str], request_id: str) -> Payment:
        """§5: verify the signature over every query parameter but `signature` (`frame_mode` is left
        out by the signer itself), then register the payment or show the one already registered."""
        raw = params.get("project_id")
        if _missing(raw):
            raise GateError("2004", field="project_id")
        project_id = parse_project_id(raw)
        if project_id is None or project_id not in self.config.projects:
            raise GateError("2442", field="project_id")
        if not params.get("signature"):
            raise GateError("3262", field="signature")
        if not verify(params, self.key(project_id)):
            raise GateError("3261", field="signature")
        missing = [name for name in _PAGE_REQUIRED if _missing(params.get(name))]
        if missing:
            raise GateError("2004", fields=missing)
        if params["payment_currency"] != "BDT":
            raise GateError("3023", field="payment_currency", detail="bKash purchases are in BDT only")
        text = params["payment_amount"]
        # ASCII digits only (str.isdigit() accepts "²", which int() refuses): anything else is a 502.
        amount = _check_amount(int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else text,
                               "payment_amount")
        account = params.get("customer_account_number")
        if account:
            account = _check_account(account, "customer_account_number")
        payment_id = params["payment_id"]
        p = self.find(project_id, payment_id)
        if p is not None:
            # Reloading the page is normal; another purchase under a used payment_id is not (§3.1).
            if p.channel is Channel.PAYMENT_PAGE and p.amount == amount and p.customer_id == params["customer_id"]:
                return p
            raise GateError("3041", field="payment_id")
        self.counters["payment_page_opened"] += 1
        p = self._new_payment(project_id, payment_id, Channel.PAYMENT_PAGE, amount, params["customer_id"],
                              params.get("payment_description") or "",
                              params.get("merchant_callback_url") or self.config.default_callback_url, request_id)
        p.account_number = account or None
        return p

    def complete_payment_page(self, project_id: int, payment_id: str, outcome: Any, amount: Any = None,
                              code: Any = None) -> dict:
        """The customer finishes on the page (seed PP steps 8-13): pays and enters the transaction ID,
        or the provider declines. Emits the one PP callback (§5.4)."""
        p = self.find(project_id, payment_id)
        if p is None:
            raise ActionError(404, f"no payment {payment_id} in project {project_id}")
        if p.channel is not Channel.PAYMENT_PAGE:
            raise ActionError(409, f"payment {payment_id} was made through Gate; use /sandbox/customer/pay "
                                   "and the clarification request")
        if p.status.final:
            raise ActionError(409, f"payment {payment_id} already ended {p.status.value}")
        if outcome == "success":
            cp = self._transfer(p, amount, None)
            self._settle(p, cp)
            return {"status": p.status.value, "code": p.code, "transaction_id": cp.transaction_id}
        if outcome == "decline":
            code = "20000" if code is None else str(code)
            if code not in codes.PAGE_DECLINE_CODES:
                raise ActionError(422, f"code {code} is not a decline code the page offers: "
                                       f"{sorted(codes.PAGE_DECLINE_CODES)}")
            self._decline(p, code)
            return {"status": p.status.value, "code": p.code, "transaction_id": None}
        raise ActionError(422, f"outcome {outcome!r} must be 'success' or 'decline'")

    # --- transitions --------------------------------------------------------------------------------

    def _new_payment(self, project_id: int, payment_id: str, channel: Channel, amount: int, customer_id: str,
                     description: str, callback_url: str | None, request_id: str) -> Payment:
        now = self.clock()
        operation_id, _ = self.ids.next()
        p = Payment(project_id, payment_id, channel, amount, "BDT", customer_id, description, callback_url,
                    operation_id, request_id, now, PaymentStatus.AWAITING_CUSTOMER, now,
                    now + self.config.clarification_timeout_seconds)
        self.payments[(project_id, payment_id)] = p
        return p

    def _await_clarification(self, p: Payment) -> None:
        self._enter(p, PaymentStatus.AWAITING_CLARIFICATION, codes.AWAITING_CLARIFICATION)
        p.deadline = p.updated_at + self.config.clarification_timeout_seconds

    def _await_customer(self, p: Payment) -> None:
        self._enter(p, PaymentStatus.AWAITING_CUSTOMER, codes.AWAITING_CUSTOMER)
        p.deadline = p.updated_at + self.config.clarification_timeout_seconds

    def _decide(self, p: Payment, transaction_id: str) -> None:
        """The provider's answer to the transaction ID (seed steps 13-14)."""
        cp = next((c for c in p.customer_payments if c.transaction_id == transaction_id), None)
        if cp is None:
            self._decline(p, "20000")
        elif cp.insufficient_balance:
            self._decline(p, "20105", cp)
        else:
            self._settle(p, cp)

    def _settle(self, p: Payment, cp: CustomerPayment) -> None:
        if cp.amount != p.amount and self.config.amount_change_policy == "decline":
            self._decline(p, "20304", cp)
            return
        # §4.5 [I]: the final callback carries the amount actually paid; that is what is credited.
        p.paid_amount = cp.amount
        p.account_number, p.provider_payment_id = cp.wallet, cp.transaction_id
        self._record(LedgerKind.SETTLED, p, cp.amount, cp.transaction_id, cp.wallet)
        self._enter(p, PaymentStatus.SUCCESS, codes.SUCCESS)

    def _decline(self, p: Payment, code: str, cp: CustomerPayment | None = None) -> None:
        if cp is not None:
            p.account_number, p.provider_payment_id = cp.wallet, cp.transaction_id
        self._enter(p, PaymentStatus.DECLINE, code)

    def _enter(self, p: Payment, status: PaymentStatus, code: str) -> None:
        p.status, p.code, p.message, p.updated_at = status, code, codes.message(code), self.clock()
        self.outbox.emit(p.callbacks, Target(p.project_id, p.payment_id, status.value, "sale"),
                         self.signed_body(p), p.callback_url, p.callback_delay_seconds)

    def _record(self, kind: LedgerKind, p: Payment, amount: int, transaction_id: str | None,
                wallet: str | None) -> None:
        self.ledger.append(LedgerEntry(len(self.ledger) + 1, kind, p.project_id, p.payment_id, amount,
                                       p.currency, transaction_id, wallet, self.clock()))

    # --- what goes on the wire ----------------------------------------------------------------------

    def display_data(self, p: Payment) -> list[dict[str, str]]:
        # Seed, "Displaying the payment instructions": type is always add_info, title account_number.
        items = [{"type": "add_info", "title": "account_number", "data": self.config.receiver_account}]
        if self.config.display_amount:
            items.append({"type": "add_info", "title": "amount", "data": amount_text(p.amount)})
        return items

    def signed_body(self, p: Payment, *, status_answer: bool = False, refund: Refund | None = None) -> dict[str, Any]:
        """A callback (seed Figures 7-8; §4.1 field inventory), a refund's callback (``refund``: its
        operation, §3.6) or, with ``status_answer``, the status answer, which mirrors a callback with
        ``operations[]``: the sale and every refund (§3.4). Signed at the root (§4.1)."""
        # §4.5 [I]: on success both payment.sum and operation.sum_initial carry the amount paid; a
        # decline keeps the requested amount, since nothing is credited.
        paid = {"amount": p.settled_amount, "currency": p.currency}
        operation = {
            # The sale stays a success whatever its refunds did since.
            "id": p.operation_id, "type": "sale",
            "status": PaymentStatus.SUCCESS.value if p.status.paid else p.status.value,
            "date": monetix_time(p.updated_at), "created_date": monetix_time(p.created_at),
            "request_id": p.request_id, "sum_initial": dict(paid),
            # No conversion: BDT in, BDT out.
            "sum_converted": dict(paid), "code": p.code, "message": p.message,
            "provider": {"id": self.config.provider_id, "payment_id": p.provider_payment_id or "",
                         "auth_code": ""},
        }
        # After refunds payment.sum is what is left ("Payment balance": woocommerce-ecommpay
        # EcpModuleRefund) [C-ish]; the sale operation keeps the amount paid.
        balance = p.settled_amount - p.refunded_amount
        payment: dict[str, Any] = {"id": p.payment_id, "type": "purchase", "status": p.status.value,
                                   "date": monetix_time(p.updated_at), "method": "Bkash",
                                   "sum": {"amount": balance, "currency": p.currency},
                                   "description": p.description}
        # §4.1 lists payment.merchant_refund_id: a refund callback names its refund; the status
        # answer, mirroring the latest callback, the latest refund's [I].
        latest = refund or (p.refunds[-1] if status_answer and p.refunds else None)
        if latest is not None and latest.merchant_refund_id is not None:
            payment["merchant_refund_id"] = latest.merchant_refund_id
        data: dict[str, Any] = {"project_id": p.project_id, "payment": payment,
                                "customer": {"id": p.customer_id}}
        if status_answer:
            data["operations"] = [operation, *(refund_operation(r, self.config.provider_id) for r in p.refunds)]
        elif refund is not None:
            data["operation"] = refund_operation(refund, self.config.provider_id)
        else:
            data["operation"] = operation
        if p.account_number is not None:
            data["account"] = {"number": p.account_number}
        if p.status is PaymentStatus.AWAITING_CUSTOMER:
            data["display_data"] = self.display_data(p)
        elif p.status is PaymentStatus.AWAITING_CLARIFICATION:
            data["clarification_fields"] = ACCOUNT_CLARIFICATION_FIELDS
        data["signature"] = sign(data, self.key(p.project_id), order=self.config.signature_order)
        return data

    # --- admin views --------------------------------------------------------------------------------

    def payment_view(self, p: Payment) -> dict:
        return {
            "project_id": p.project_id, "payment_id": p.payment_id, "channel": p.channel.value,
            "status": p.status.value, "final": p.status.final, "code": p.code, "message": p.message,
            "requested_amount": p.amount, "paid_amount": p.paid_amount, "currency": p.currency,
            "account_number": p.account_number, "customer_id": p.customer_id,
            "operation_id": p.operation_id, "request_id": p.request_id,
            "provider_payment_id": p.provider_payment_id, "callback_url": p.callback_url,
            "created_at": p.created_at, "updated_at": p.updated_at, "deadline": p.deadline,
            "customer_payments": [c.to_dict() for c in p.customer_payments],
            "transaction_ids": [c.transaction_id for c in p.customer_payments],
            "submitted_transaction_ids": p.submitted_transaction_ids,
            "clarifications": [c.to_dict() for c in p.clarifications],
            "refunds": [r.to_dict() for r in p.refunds],
            "refunded_amount": p.refunded_amount, "refundable_amount": p.refundable_amount,
            "callbacks": [c.to_dict() for c in p.callbacks],
            "status_requests": p.status_requests, "early_status_requests": p.early_status_requests,
        }

    def ledger_view(self, project_id: int | None = None, payment_id: str | None = None) -> list[dict]:
        return [e.to_dict() for e in self.ledger
                if (project_id is None or e.project_id == project_id)
                and (payment_id is None or e.payment_id == payment_id)]

    def stats(self) -> dict:
        records = self.outbox.records
        return {
            **self.counters,
            "rejections": dict(self.rejections),
            "payments": len(self.payments),
            "callbacks": {
                "emitted": len(records),
                "attempts": sum(len(r.attempts) for r in records),
                "delivered": sum(r.delivery is Delivery.DELIVERED for r in records),
                "lost": sum(r.delivery is Delivery.LOST for r in records),
                "abandoned": sum(r.delivery is Delivery.ABANDONED for r in records),
                "pending": sum(r.delivery is Delivery.PENDING for r in records),
            },
        }
