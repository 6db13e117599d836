"""Reconciliation (issue 13 §2; README "Reconciliation"): what a run over one window exchanges with
merchant code, its batches and its activities.

A *window* is a half-open interval [start, end) of UTC instants. A run over a window checks, against
the provider, every payment whose workflow CLOSED in it, every refund that ended in it, and every
payment still running whose deadlines ended in it; each item belongs to exactly one window, so the
reports of consecutive windows never list the same finding twice. Amounts are poisha.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from contracts.bkash import WORKFLOW as BKASH_WORKFLOW
from contracts.bkash import BkashPaymentRequest
from contracts.common import DEFAULT_ACCOUNT, Model, Provider
from contracts.monetix import GATE_WORKFLOW, PAGE_WORKFLOW, MonetixPurchaseRequest
from contracts.monetix import PaymentPagePurchaseRequest
from contracts.refunds import WORKFLOW as REFUNDS_WORKFLOW

RUN_WORKFLOW = "ReconciliationRun"
BATCH_WORKFLOW = "ReconciliationBatch"
SCHEDULE_ID = "payments-reconciliation"
# The worker's report directory (PAYMENTS_RECONCILIATION_DIR); the CLI prints the files' paths.
REPORT_DIR_SETTING = "PAYMENTS_RECONCILIATION_DIR"
DEFAULT_REPORT_DIR = ".data/reconciliation"
PAYMENT_WORKFLOWS = (BKASH_WORKFLOW, GATE_WORKFLOW, PAGE_WORKFLOW)
LEDGER_WORKFLOW = REFUNDS_WORKFLOW
# A longer window is a mistake more often than a plan (a year typed for a day); split it.
MAX_WINDOW = timedelta(days=31)
# Monetix: "do not call it earlier than 10 s after the initial request" (monetix-gate.md §3.4).
MONETIX_STATUS_DELAY = timedelta(seconds=10)


class ReconciliationActivity(StrEnum):
    LIST_PAGE = "reconciliation_list_page"
    CHECK_BATCH = "reconciliation_check_batch"
    PREVIOUS_REPORT = "reconciliation_previous_report"
    WRITE_REPORT = "reconciliation_write_report"


def iso(at: datetime) -> str:
    """``2025-01-02T00:00:00Z``: the one spelling of an instant in ids, files and reports."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Window(Model):
    """[start, end) in UTC, whole seconds (so its workflow id and file names are exact)."""

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _utc_seconds(cls, v: datetime, info) -> datetime:
        if v.tzinfo is None:
            raise ValueError(f"{info.field_name} {v.isoformat()} has no time zone; give one, e.g. "
                             "2025-01-02T00:00:00Z or 2025-01-02T06:00:00+06:00")
        if v.microsecond:
            raise ValueError(f"{info.field_name} {v.isoformat()} must be a whole second (window "
                             "ids and report names are to the second)")
        return v.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(f"end {iso(self.end)} must be after start {iso(self.start)}")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError(f"the window {iso(self.start)}..{iso(self.end)} is longer than "
                             f"{MAX_WINDOW.days} days; reconcile it in shorter windows")
        return self

    @property
    def workflow_id(self) -> str:
        return f"reconcile:{iso(self.start)}..{iso(self.end)}"

    @property
    def label(self) -> str:
        return f"{iso(self.start)}..{iso(self.end)}"

    @property
    def file_stem(self) -> str:
        """``reconcile_20250101T000000Z_20250102T000000Z`` (no ':' for file systems that refuse it)."""
        def compact(at: datetime) -> str:
            return iso(at).replace("-", "").replace(":", "")
        return f"reconcile_{compact(self.start)}_{compact(self.end)}"

    def holds(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def duration_text(value: timedelta) -> str:
    """``1h``, ``15m``, ``1d2h``, ``90s`` → the spelling the CLI takes (``--lag 15m``)."""
    seconds, parts = int(value.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            amount, seconds = divmod(seconds, size)
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def window_ending(at: datetime, length: timedelta) -> Window:
    """The window of ``length`` that ends at the last multiple of ``length`` since the Unix epoch at
    or before ``at``: 24 h windows are UTC days, so a scheduled run, a late one (catch-up) and a
    manual trigger of the same day all reconcile the same window."""
    if length <= timedelta(0) or length.microseconds:
        raise ValueError(f"window length {length} must be a positive whole number of seconds")
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    step = int(length.total_seconds())
    end = epoch + timedelta(seconds=int((at - epoch).total_seconds()) // step * step)
    return Window(start=end - length, end=end)


class DivergenceKind(StrEnum):
    """What the provider and the project disagree on."""

    STATE = "state"                              # the provider reports another state
    AMOUNT = "amount"                            # ... another amount
    UNKNOWN_REFUND = "unknown_refund"            # a refund at the provider the project never made
    MISSING_AT_PROVIDER = "missing_at_provider"  # the provider does not know the transaction
    OVERDUE = "overdue"                          # still running past its own deadlines
    NO_OUTCOME = "no_outcome"                    # the workflow ended without a result (terminated)


class ItemKind(StrEnum):
    PAYMENT = "payment"   # a payment workflow that closed in the window
    LEDGER = "ledger"     # a refund ledger that was open during the window
    RUNNING = "running"   # a payment workflow still running, checked against its deadlines


class ItemRef(Model):
    """One workflow to check, as Temporal's visibility lists it."""

    kind: ItemKind
    workflow_id: str
    run_id: str
    workflow_type: str
    status: str  # WorkflowExecutionStatus name: COMPLETED, TERMINATED, RUNNING, ...
    started_at: datetime
    closed_at: datetime | None = None
    stage: str | None = None  # its PaymentStage search attribute


class Divergence(Model):
    """One finding: one row of the report, one notification event."""

    kind: DivergenceKind
    provider: Provider
    source: str       # the workflow checked (a payment, or its refund ledger)
    payment_key: str  # the payment's workflow id
    account_id: str = DEFAULT_ACCOUNT
    stage: str        # what the project recorded (the payment's or the refund's stage)
    project: str | None = None        # the project's side, as text ("CAPTURED", "1000.00")
    provider_says: str | None = None  # the provider's side, as text ("Cancelled", "900.00")
    amount_poisha: int | None = None  # the amount the project recorded
    provider_amount_poisha: int | None = None
    provider_payment_id: str | None = None  # bKash paymentID / Monetix payment_id
    trx_id: str | None = None               # bKash trxID / Monetix's bKash transaction id
    refund_id: str | None = None            # the project's refund id, or the provider's refund id
    detail: str = ""

    @property
    def key(self) -> str:
        """Its identity across runs of a window: a re-run reports it again, but does not notify."""
        return f"{self.kind.value}|{self.source}|{self.refund_id or ''}"


def key_source(key: str) -> str:
    """The ``source`` of a ``Divergence.key`` (neither a kind nor a refund id holds a '|')."""
    return key.split("|", 1)[1].rsplit("|", 1)[0]


REPORT_COLUMNS = ("kind", "provider", "payment_key", "account_id", "stage", "project",
                  "provider_says", "amount_poisha", "provider_amount_poisha", "provider_payment_id",
                  "trx_id", "refund_id", "source", "detail")


class Unchecked(Model):
    """An item the run could not check (an account this worker has no settings for, an answer it
    cannot read): named in the report so that someone looks, never silently dropped."""

    source: str
    reason: str


class Counts(Model):
    bkash_payments: int = 0
    monetix_payments: int = 0
    refunds: int = 0
    running: int = 0
    # Closed with nothing to ask the provider: no trxID (bKash search needs one), no sale sent.
    skipped: int = 0

    def plus(self, other: Counts) -> Counts:
        return Counts(**{k: getattr(self, k) + getattr(other, k) for k in Counts.model_fields})


class CheckOptions(Model):
    """What one batch needs to check its items."""

    # The provider call rate of one batch (the run divides its own rate among parallel batches).
    calls_per_second: float = Field(default=10.0, gt=0, le=1000)
    # A running payment is overdue once its own windows (approval, hold, ...) plus this are over.
    overdue_grace: timedelta = timedelta(hours=1)
    monetix_status_delay: timedelta = MONETIX_STATUS_DELAY


class ReconciliationOptions(CheckOptions):
    # The provider call rate of the whole run, across its parallel batches.
    calls_per_second: float = Field(default=10.0, gt=0, le=1000)
    batch_size: int = Field(default=100, ge=1, le=1000)
    parallel_batches: int = Field(default=2, ge=1, le=20)
    # Continue-as-new after this many batches, so no history grows past a few thousand events.
    batches_per_run: int = Field(default=100, ge=1, le=300)
    # The report (and the workflow's result) lists at most this many; the rest are counted.
    max_listed_divergences: int = Field(default=500, ge=1, le=5000)

    def for_batch(self) -> CheckOptions:
        return CheckOptions(calls_per_second=self.calls_per_second / self.parallel_batches,
                            overdue_grace=self.overdue_grace,
                            monetix_status_delay=self.monetix_status_delay)


class Source(StrEnum):
    """What the run lists from Temporal's visibility, in this order."""

    CLOSED_PAYMENTS = "closed_payments"
    REFUND_LEDGERS = "refund_ledgers"
    RUNNING_PAYMENTS = "running_payments"


class RunProgress(Model):
    """What a run carries across continue-as-new."""

    source: Source | None = Source.CLOSED_PAYMENTS  # None: everything is listed
    page_token: str | None = None  # base64 of Temporal's opaque visibility token
    batches: int = 0
    checked: Counts = Counts()
    divergences: list[Divergence] = []
    unchecked: list[Unchecked] = []
    unlisted: int = 0  # divergences beyond max_listed_divergences: counted, not listed
    notified: int = 0
    provider_calls: int = 0
    previous_keys: list[str] = []


class ReconciliationInput(Model):
    """``window`` None: a scheduled fire, which reconciles the window of ``window_length`` that
    ended ``lag`` before its scheduled time (``window_ending``)."""

    window: Window | None = None
    window_length: timedelta = timedelta(hours=24)
    lag: timedelta = timedelta(minutes=15)
    options: ReconciliationOptions = ReconciliationOptions()
    progress: RunProgress | None = None

    @field_validator("window_length")
    @classmethod
    def _length(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0) or v.microseconds or v > MAX_WINDOW:
            raise ValueError(f"window_length {duration_text(v)} must be more than 0, whole "
                             f"seconds, at most {MAX_WINDOW.days} days")
        return v

    @field_validator("lag")
    @classmethod
    def _lag(cls, v: timedelta) -> timedelta:
        if v < timedelta(0):
            raise ValueError(f"lag -{duration_text(-v)} must not be negative")
        return v


class PageRequest(Model):
    window: Window
    source: Source
    page_token: str | None = None
    page_size: int
    overdue_grace: timedelta


class Page(Model):
    refs: list[ItemRef] = []
    next_token: str | None = None  # None: this source is listed to the end


class BatchInput(Model):
    window: Window
    number: int
    refs: list[ItemRef]
    options: CheckOptions = CheckOptions()
    # Keys of the divergences the previous run of this window reported for these items.
    already_reported: list[str] = []


class BatchResult(Model):
    checked: Counts = Counts()
    divergences: list[Divergence] = []
    unchecked: list[Unchecked] = []
    notified: int = 0
    provider_calls: int = 0


class ReconciliationReport(Model):
    """A window's findings: the workflow's result and, without the run-specific fields at the end,
    exactly what the JSON report file holds."""

    window: Window
    workflow_id: str
    checked: Counts
    divergence_count: int
    divergences: list[Divergence] = []
    unchecked: list[Unchecked] = []
    unlisted: int = 0
    # Of this run only (not in the files, so a re-run that finds the same writes the same files):
    json_path: str | None = None
    csv_path: str | None = None
    notified: int = 0  # divergence events this run sent (0 on a re-run that found nothing new)
    provider_calls: int = 0  # retries of a provider that did not answer count too

    RUN_FIELDS: ClassVar[frozenset[str]] = frozenset({"json_path", "csv_path", "notified",
                                                       "provider_calls"})


class ReportFiles(Model):
    json_path: str
    csv_path: str


def payment_deadline(workflow_type: str, request: Model, started_at: datetime,
                     grace: timedelta) -> datetime:
    """When a payment started at ``started_at`` must have ended by its own windows: every wait its
    workflow may make, one after the other, plus ``grace`` for provider retries."""
    if workflow_type == BKASH_WORKFLOW and isinstance(request, BkashPaymentRequest):
        # Each create may wait a whole approval window; an execute without a token waits for one.
        lifetime = (request.approval_window * request.max_create_attempts
                    + max(request.token_wait, request.approval_window) + request.hold_deadline)
    elif workflow_type == GATE_WORKFLOW and isinstance(request, MonetixPurchaseRequest):
        lifetime = (request.instructions_wait + request.clarification_window
                    + request.transaction_id_window + request.final_callback_wait)
    elif workflow_type == PAGE_WORKFLOW and isinstance(request, PaymentPagePurchaseRequest):
        lifetime = request.result_window
    else:
        raise ValueError(f"{workflow_type} with a {type(request).__name__} is not a payment")
    return started_at + lifetime + grace


def request_type(workflow_type: str) -> type[Model]:
    """The input model of a payment workflow type."""
    return {BKASH_WORKFLOW: BkashPaymentRequest, GATE_WORKFLOW: MonetixPurchaseRequest,
            PAGE_WORKFLOW: PaymentPagePurchaseRequest}[workflow_type]


def provider_of(workflow_type: str) -> Provider:
    return Provider.BKASH if workflow_type == BKASH_WORKFLOW else Provider.MONETIX


def account_of(workflow_id: str) -> str:
    """The merchant account in a payment's workflow id (``bkash@brand2:INV-1`` → ``brand2``; the
    default account's ids carry none: contracts.common.account_workflow_id)."""
    head, sep, _ = workflow_id.partition(":")
    for prefix in ("bkash@", "monetix@"):
        if sep and head.startswith(prefix):
            return head.removeprefix(prefix)
    return DEFAULT_ACCOUNT


def business_key_of(workflow_id: str) -> str:
    """The invoice (bKash) or payment_id (Monetix) in a payment's workflow id."""
    for prefix in ("bkash-", "monetix-"):
        if workflow_id.startswith(prefix):
            return workflow_id.removeprefix(prefix)
    head, sep, rest = workflow_id.partition(":")
    return rest if sep and head.startswith(("bkash@", "monetix@")) else workflow_id
