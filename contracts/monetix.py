"""What the Monetix workflows (Gate purchase, Payment Page purchase) exchange with merchant code, the
merchant endpoint and their activities. Amounts are integer poisha, named so."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, Field, field_validator

from contracts.common import (
    DEFAULT_ACCOUNT,
    Model,
    TimelineEvent,
    account_workflow_id,
    check_account_id,
    check_callback_base_url,
)
from contracts.monetix_requests import MonetixSaleRequest, PaymentPageParams
from contracts.monetix_status import MonetixDisplayItem, MonetixStatus

GATE_WORKFLOW = "MonetixGatePurchase"
PAGE_WORKFLOW = "PaymentPagePurchase"


class MonetixOp(StrEnum):
    """The workflows' update, signal and query names (stable: in-flight purchases depend on them)."""

    PAYMENT_INSTRUCTIONS = "payment_instructions"
    PAYMENT_PAGE = "payment_page"
    PROVIDER_CALLBACK = "provider_callback"
    PROVIDE_CLARIFICATION = "provide_clarification"
    SUBMIT_TRANSACTION_ID = "submit_transaction_id"
    TRANSACTION_ID_SIGNAL = "transaction_id"
    STATE = "state"


class MonetixActivity(StrEnum):
    """Activity names (stable, in-flight purchases depend on them)."""

    SALE = "monetix_sale"
    CLARIFICATION = "monetix_clarification"
    STATUS = "monetix_status"
    PAYMENT_PAGE_LINK = "monetix_payment_page_link"


def workflow_id_for_payment(payment_id: str, account_id: str = DEFAULT_ACCOUNT) -> str:
    # Gate and Payment Page purchases share the project's payment_id space, so one prefix: the
    # endpoint routes a callback by payment.id without knowing which interface started it. Two
    # accounts (projects) may use the same payment_id: ``monetix@<account>:<payment_id>`` for any
    # but the default account, whose ids stay ``monetix-<payment_id>``.
    return account_workflow_id("monetix", payment_id, account_id)


class MonetixStage(StrEnum):
    SALE = "SALE"
    AWAITING_INSTRUCTIONS = "AWAITING_INSTRUCTIONS"
    AWAITING_CLARIFICATION = "AWAITING_CLARIFICATION"
    AWAITING_TRANSACTION_ID = "AWAITING_TRANSACTION_ID"
    CLARIFYING = "CLARIFYING"
    AWAITING_CUSTOMER = "AWAITING_CUSTOMER"  # Payment Page: the customer is on the checkout page
    AWAITING_RESULT = "AWAITING_RESULT"
    # final
    SUCCESS = "SUCCESS"
    DECLINED = "DECLINED"
    EXPIRED = "EXPIRED"
    # The merchant's configuration: the purchase names an account this worker has no Monetix
    # project for. Nothing was sent to Monetix.
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (MonetixStage.SUCCESS, MonetixStage.DECLINED, MonetixStage.EXPIRED,
                        MonetixStage.FAILED)


class MonetixErrorKind(StrEnum):
    """What a failed Monetix call means; the ``type`` of the activity's error."""

    INVALID_REQUEST = "MonetixInvalidRequest"
    REQUEST_REJECTED = "MonetixRequestRejected"
    DUPLICATE_PAYMENT = "MonetixDuplicatePayment"
    DUPLICATE_REFUND = "MonetixDuplicateRefund"
    PAYMENT_NOT_FOUND = "MonetixPaymentNotFound"
    RESULT_UNKNOWN = "MonetixResultUnknown"
    BAD_SIGNATURE = "MonetixBadSignature"
    NOT_CONFIGURED = "MonetixNotConfigured"
    STILL_PROCESSING = "MonetixStillProcessing"
    GENERIC = "MonetixError"


class _PurchaseRequest(Model):
    callback_base_url: str
    provider_timeout: timedelta = timedelta(seconds=30)
    # The Monetix project the purchase is made in. Workflow ids carry only the payment_id, which two
    # projects of one merchant may share; an endpoint serving several projects names each callback's
    # project, and a purchase takes only its own project's (None: a purchase of the endpoint's one
    # project, as every purchase started before this field was).
    project_id: int | None = Field(default=None, gt=0)
    # The merchant account whose Monetix project the worker uses (README "Several merchant
    # accounts"); part of the workflow id unless it is the default.
    account_id: str = DEFAULT_ACCOUNT

    @field_validator("callback_base_url")
    @classmethod
    def _callback_base(cls, v: str) -> str:
        return check_callback_base_url(v)

    @field_validator("account_id")
    @classmethod
    def _account(cls, v: str) -> str:
        return check_account_id(v)

    @property
    def callback_url(self) -> str:
        return f"{self.callback_base_url}/monetix/callback"


class MonetixPurchaseRequest(_PurchaseRequest):
    """A bKash purchase through Monetix Gate. ``sale`` carries Monetix's own validation (BDT only,
    amount a positive multiple of 1000 poisha, account number digits ≤ 12, email, IP)."""

    sale: MonetixSaleRequest
    instructions_wait: timedelta = timedelta(minutes=2)
    # How long the customer has to pay in bKash and type the transaction ID on the merchant's site.
    transaction_id_window: timedelta = timedelta(minutes=30)
    clarification_window: timedelta = timedelta(minutes=30)  # §3.5: the platform waits 30 min
    final_callback_wait: timedelta = timedelta(minutes=2)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for_payment(self.sale.payment_id, self.account_id)

    @property
    def payment_id(self) -> str:
        return self.sale.payment_id

    @property
    def amount_poisha(self) -> int:
        return self.sale.amount_poisha


class PaymentPagePurchaseRequest(_PurchaseRequest):
    params: PaymentPageParams
    # The customer has this long on the checkout page before the status request decides.
    result_window: timedelta = timedelta(minutes=45)

    @property
    def workflow_id(self) -> str:
        return workflow_id_for_payment(self.params.payment_id, self.account_id)

    @property
    def payment_id(self) -> str:
        return self.params.payment_id

    @property
    def amount_poisha(self) -> int:
        return self.params.amount_poisha


DisplayItem = MonetixDisplayItem


class MonetixCallbackEvent(Model):
    """A callback the endpoint verified (signature checked), read as the payment's status."""

    status: MonetixStatus
    clarification_fields: dict[str, Any] | None = None
    # The callback's project, set by an endpoint that serves several (see _PurchaseRequest.project_id).
    project_id: int | None = None
    # The merchant account the endpoint's settings give that project (None: an endpoint without
    # account settings); a purchase takes only its own account's callbacks.
    account_id: str | None = None

    @property
    def payment_id(self) -> str:
        return self.status.payment_id

    @property
    def update_id(self) -> str:
        # §4.1: the same callback can arrive more than once; process idempotently keyed by
        # (payment.id, operation.id, operation.status) — and the project when one is named, so that
        # another project's callback is never absorbed as a repeat of this one's.
        op = self.status.operations[-1] if self.status.operations else None
        project = f"{self.project_id}-" if self.project_id is not None else ""
        return (f"callback-{project}{(op and op.id) or '-'}-{(op and op.type) or '-'}-"
                f"{(op and op.status) or self.status.status}-{self.status.status}")


class CallbackAck(Model):
    applied: bool
    stage: MonetixStage
    detail: str = ""


TRANSACTION_ID = re.compile(r"^[A-Za-z0-9]{6,20}$")


class TransactionIdSubmission(Model):
    transaction_id: str


class ClarificationAnswer(Model):
    """The fields Monetix asked for in clarification_fields, e.g. {"account": {"number": "0171..."}}."""

    fields: dict[str, Any] = Field(min_length=1)


class PaymentInstructions(Model):
    """What the customer needs to pay, or what Monetix still needs (update-with-start answer)."""

    workflow_id: str
    payment_id: str
    stage: MonetixStage
    display_data: list[DisplayItem] = []
    clarification_fields: dict[str, Any] | None = None
    payment_page_url: str | None = None
    detail: str = ""
    # The running purchase's amount, so a retried start can tell it is the same request.
    amount_poisha: int | None = None
    transaction_id: str | None = None


class MonetixPurchaseState(Model):
    workflow_id: str
    payment_id: str
    interface: str  # "gate" | "payment_page"
    stage: MonetixStage
    requested_poisha: int = Field(validation_alias=AliasChoices("requested_poisha",
                                                                "requested_amount"))
    paid_poisha: int | None = None
    request_id: str | None = None
    display_data: list[DisplayItem] = []
    clarification_fields: dict[str, Any] | None = None
    transaction_id: str | None = None
    rejected_transaction_ids: list[str] = []
    callbacks_applied: int = 0
    callbacks_ignored: int = 0
    last_error: str | None = None
    timeline: list[TimelineEvent] = []


class MonetixPurchaseResult(Model):
    payment_id: str
    outcome: MonetixStage
    requested_poisha: int = Field(validation_alias=AliasChoices("requested_poisha",
                                                                "requested_amount"))
    # §4.5: what Monetix says was paid; credit this, never the requested amount.
    paid_poisha: int | None = Field(default=None,
                                    validation_alias=AliasChoices("paid_poisha", "paid_amount"))
    amount_changed: bool = False
    currency: str = "BDT"
    decline_code: str | None = None
    decline_message: str | None = None
    provider_payment_id: str | None = None
    account_number: str | None = None
    detail: str = ""


# Activity inputs and outputs --------------------------------------------------------------

class SaleInput(Model):
    sale: MonetixSaleRequest
    callback_url: str
    # Which Monetix project (account) the worker signs with; absent in histories before accounts.
    account_id: str = DEFAULT_ACCOUNT


class SaleAck(Model):
    payment_id: str
    request_id: str | None = None
    # Set when an earlier attempt turned out to be registered already (resolved by status).
    known_status: str | None = None


class ClarificationInput(Model):
    payment_id: str
    additional_data: dict[str, str] = {}
    fields: dict[str, Any] = {}
    # The payment statuses in which the clarification is still needed; a retry first asks Monetix
    # and does not send again once the payment has moved on.
    pending_statuses: list[str] = []
    account_id: str = DEFAULT_ACCOUNT


class StatusPoll(Model):
    payment_id: str
    # Return as soon as the status is one of these (or final); otherwise raise so Temporal's retry
    # policy polls again with backoff.
    wanted_statuses: list[str] = []
    # Payment Page: "never registered" means the customer never paid, a final answer.
    not_found_is_final: bool = False
    # Return whatever the status is (one look, no polling).
    accept_any: bool = False
    account_id: str = DEFAULT_ACCOUNT


class PaymentPageLinkInput(Model):
    params: PaymentPageParams
    callback_url: str
    account_id: str = DEFAULT_ACCOUNT


class PaymentPageLink(Model):
    url: str
    widget_params: dict[str, Any]
