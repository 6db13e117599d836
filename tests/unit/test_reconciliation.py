"""Reconciliation's rules without servers: windows, deadlines, divergence identity, the visibility
queries, the report's CSV, the CLI's flags, the pacer, and each provider comparison against stubbed
provider clients (the whole path runs in tests/e2e/test_reconciliation.py)."""

from __future__ import annotations

import argparse
import csv
import io
import time
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from activities.accounts import AccountClients
from activities.reconciliation import report_csv, visibility_query
from activities.reconciliation_checks import Checks, Pacer
from contracts.bkash import BkashPaymentRequest, BkashPaymentResult, BkashStage
from contracts.monetix import MonetixPurchaseResult, MonetixStage
from contracts.monetix_status import MonetixStatus
from contracts.reconciliation import (
    BatchResult,
    CheckOptions,
    Divergence,
    DivergenceKind,
    ItemKind,
    ItemRef,
    PageRequest,
    Source,
    Window,
    account_of,
    business_key_of,
    key_source,
    payment_deadline,
    window_ending,
)
from merchant_client.connection import PaymentError
from merchant_client.reconciliation_cli import (
    add_reconcile_parser,
    parse_duration,
    prepare_reconcile,
)
from providers.bkash import RefundStatus, RefundTransaction, TransactionDetails
from providers.bkash_errors import BkashUnexpectedResponse
from providers.monetix import MonetixPaymentNotFound, MonetixRefunds

UTC = timezone.utc
DAY = Window(start=datetime(2025, 1, 1, tzinfo=UTC), end=datetime(2025, 1, 2, tzinfo=UTC))


def test_a_window_is_utc_whole_seconds_ordered_and_at_most_a_month():
    shifted = Window(start=datetime(2025, 1, 1, 6, tzinfo=timezone(timedelta(hours=6))),
                     end=datetime(2025, 1, 2, tzinfo=UTC))
    assert shifted.start == DAY.start and shifted.workflow_id == (
        "reconcile:2025-01-01T00:00:00Z..2025-01-02T00:00:00Z")
    assert DAY.file_stem == "reconcile_20250101T000000Z_20250102T000000Z"
    for start, end, rule in [(datetime(2025, 1, 1), DAY.end, "time zone"),
                             (DAY.start.replace(microsecond=5), DAY.end, "whole second"),
                             (DAY.end, DAY.start, "must be after"),
                             (DAY.start, DAY.start + timedelta(days=32), "longer than 31 days")]:
        with pytest.raises(ValidationError, match=rule):
            Window(start=start, end=end)


def test_scheduled_windows_are_aligned_so_a_late_fire_reconciles_the_same_window():
    on_time = window_ending(datetime(2025, 1, 2, 0, 15, tzinfo=UTC) - timedelta(minutes=15),
                            timedelta(hours=24))
    late = window_ending(datetime(2025, 1, 2, 23, 59, tzinfo=UTC), timedelta(hours=24))
    assert on_time == late == DAY
    assert window_ending(datetime(2025, 1, 2, 13, 5, tzinfo=UTC), timedelta(hours=6)) == Window(
        start=datetime(2025, 1, 2, 6, tzinfo=UTC), end=datetime(2025, 1, 2, 12, tzinfo=UTC))


def test_a_payments_deadline_adds_every_window_it_may_wait_for():
    started = datetime(2025, 1, 1, tzinfo=UTC)
    req = BkashPaymentRequest(invoice_number="INV-1", amount_poisha=100,
                              callback_base_url="https://shop.example", max_create_attempts=2)
    # 2 × 15 min approval + 65 min token wait + 24 h hold + 1 h grace
    assert payment_deadline("BkashAuthCapture", req, started, timedelta(hours=1)) == started + \
        timedelta(minutes=30 + 65, hours=25)
    with pytest.raises(ValueError, match="is not a payment"):
        payment_deadline("PaymentRefunds", req, started, timedelta(0))


def test_a_divergence_is_known_across_runs_by_kind_source_and_refund():
    d = Divergence(kind=DivergenceKind.UNKNOWN_REFUND, provider="bkash", source="bkash-A|B",
                   payment_key="bkash-A|B", stage="CAPTURED", refund_id="RX1")
    assert d.key == "unknown_refund|bkash-A|B|RX1" and key_source(d.key) == "bkash-A|B"
    assert account_of("bkash@brand2:INV-1") == "brand2" and account_of("bkash-a@b:c") == "default"
    assert business_key_of("monetix@brand2:P-1") == "P-1"
    assert business_key_of("bkash-INV:7") == "INV:7"


def test_each_source_is_one_visibility_query_over_the_window():
    req = dict(window=DAY, page_size=10, overdue_grace=timedelta(hours=1))
    closed = visibility_query(PageRequest(source=Source.CLOSED_PAYMENTS, **req))
    assert 'CloseTime >= "2025-01-01T00:00:00Z" AND CloseTime < "2025-01-02T00:00:00Z"' in closed
    assert '"BkashAuthCapture", "MonetixGatePurchase", "PaymentPagePurchase"' in closed
    ledgers = visibility_query(PageRequest(source=Source.REFUND_LEDGERS, **req))
    assert '(ExecutionStatus = "Running" OR CloseTime >= "2025-01-01T00:00:00Z")' in ledgers
    running = visibility_query(PageRequest(source=Source.RUNNING_PAYMENTS, **req))
    assert 'StartTime < "2025-01-01T23:00:00Z"' in running


def test_the_csv_has_one_row_per_divergence_quoted_where_needed():
    d = Divergence(kind=DivergenceKind.STATE, provider="bkash", source="bkash-I", payment_key="bkash-I",
                   stage="VOIDED", project="VOIDED", provider_says="Completed", amount_poisha=100,
                   detail='says "Completed", expected Cancelled')
    rows = list(csv.DictReader(io.StringIO(report_csv([d]))))
    assert rows == [{**{k: "" for k in rows[0]}, "kind": "state", "provider": "bkash",
                     "payment_key": "bkash-I", "account_id": "default", "stage": "VOIDED",
                     "project": "VOIDED", "provider_says": "Completed", "amount_poisha": "100",
                     "source": "bkash-I", "detail": 'says "Completed", expected Cancelled'}]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_reconcile_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["reconcile", *argv])


@pytest.mark.parametrize("argv,rule", [
    (("run", "--from", "2025-01-02", "--to", "2025-01-01"), "--to 2025-01-01 must be after --from"),
    (("run", "--from", "2025-01-01T00:00:00", "--to", "2025-01-02"), "--from .* give the time zone"),
    (("run", "--from", "monday", "--to", "2025-01-02"), "--from 'monday': not an ISO 8601"),
    (("run", "--from", "2025-01-01", "--to", "2025-03-01"), "at most 31 days"),
    (("run", "--from", "2025-01-01", "--to", "2025-01-02", "--calls-per-second", "0"),
     "--calls-per-second 0.0: input should be greater than 0"),
    (("run", "--from", "2025-01-01", "--to", "2025-01-02", "--batch-size", "5000"),
     "--batch-size 5000"),
    (("run", "--from", "2099-01-01", "--to", "2099-01-02"), "has not ended yet"),
    (("schedule", "--every", "24h", "--cron", "0 0 * * *"), "give one of them"),
    (("schedule", "--every", "soon"), "--every 'soon': not a duration"),
    (("schedule", "--every", "0h"), "--every '0h': must be more than 0"),
    (("schedule", "--cron", "15 0 * * *", "--window", "40d"),
     "--window 40d must be more than 0, whole seconds, at most 31 days"),
])
def test_bad_flags_are_refused_before_connecting_naming_the_flag_and_the_rule(argv, rule):
    with pytest.raises(PaymentError, match=rule):
        prepare_reconcile(_args(*argv), now=datetime(2025, 6, 1, tzinfo=UTC))


def test_good_flags_become_a_window_or_a_schedule():
    cmd = prepare_reconcile(_args("run", "--from", "2025-01-01", "--to", "2025-01-02T00:00:00Z",
                                  "--calls-per-second", "5"), now=datetime(2025, 6, 1, tzinfo=UTC))
    assert cmd.window == DAY and cmd.options.calls_per_second == 5
    sch = prepare_reconcile(_args("schedule", "--lag", "1h30m"))
    assert sch.schedule["every"] == timedelta(hours=24) and sch.schedule["lag"] == timedelta(
        minutes=90)
    assert parse_duration("2d", "--window") == timedelta(days=2)


async def test_the_pacer_spaces_calls_to_the_rate():
    pacer = Pacer(50)
    began = time.monotonic()
    for _ in range(6):
        await pacer.wait()
    assert time.monotonic() - began >= 0.095 and pacer.calls == 6


# -- the comparisons, against stub provider clients ------------------------------------------


class Bkash:
    def __init__(self, status="Completed", amount="1000.00", refunds=(), missing=False):
        self.status, self.amount, self.refunds, self.missing = status, amount, refunds, missing

    async def search_transaction(self, trx_id):
        if self.missing:
            raise BkashUnexpectedResponse("search", "Transaction Not Found", code="2033")
        return TransactionDetails.model_validate({"trxID": trx_id, "amount": self.amount,
                                                  "transactionStatus": self.status})

    async def refund_status(self, *, payment_id, trx_id):
        return RefundStatus(refunds=[RefundTransaction.model_validate(
            {"refundTrxID": r, "transactionStatus": "Completed", "amount": "100.00"})
            for r in self.refunds])


class Monetix:
    def __init__(self, status="success", paid=100000, missing=False):
        self.status, self.paid, self.missing = status, paid, missing

    async def refund_status(self, payment_id):
        if self.missing:
            raise MonetixPaymentNotFound(payment_id, "Transaction not found")
        body = {"payment": {"id": payment_id, "status": self.status,
                            "sum": {"amount": self.paid, "currency": "BDT"}},
                "operations": [{"id": 1, "type": "sale", "status": self.status,
                                "sum_initial": {"amount": self.paid, "currency": "BDT"}}]}
        return MonetixRefunds.from_body(body, MonetixStatus.from_body(body))


def _checks(bkash=None, monetix=None, known=()):
    async def known_refunds(_):
        return set(known)
    return Checks(AccountClients("bKash", bkash or Bkash()), AccountClients("Monetix", monetix or
                  Monetix()), Pacer(1000), DAY, CheckOptions(monetix_status_delay=timedelta(0)),
                  known_refunds)


def _ref(workflow_id="bkash-INV-1", workflow_type="BkashAuthCapture"):
    return ItemRef(kind=ItemKind.PAYMENT, workflow_id=workflow_id, run_id="r", status="COMPLETED",
                   workflow_type=workflow_type, started_at=DAY.start, closed_at=DAY.start)


def _bkash(stage, trx="TRX1"):
    return BkashPaymentResult(invoice_number="INV-1", stage=stage, amount_poisha=100000,
                              payment_id="TR001", trx_id=trx)


@pytest.mark.parametrize("stage,provider,kinds", [
    (BkashStage.CAPTURED, Bkash(), []),
    (BkashStage.VOIDED, Bkash(status="Cancelled"), []),
    (BkashStage.VOIDED, Bkash(status="Authorized"), [DivergenceKind.STATE]),
    (BkashStage.CAPTURED, Bkash(amount="990.00"), [DivergenceKind.AMOUNT]),
    (BkashStage.CAPTURED, Bkash(missing=True), [DivergenceKind.MISSING_AT_PROVIDER]),
    (BkashStage.CAPTURED, Bkash(refunds=["RX1", "RX2"]), [DivergenceKind.UNKNOWN_REFUND]),
    (BkashStage.DECLINED, Bkash(status="Completed"), [DivergenceKind.STATE]),
])
async def test_bkash_payments_are_compared_by_search_and_refund_status(stage, provider, kinds):
    out = BatchResult()
    await _checks(bkash=provider, known={"RX1"}).bkash_payment(_ref(), _bkash(stage), out)
    assert [d.kind for d in out.divergences] == kinds


async def test_a_bkash_payment_without_a_trx_id_is_skipped_not_queried():
    out = BatchResult()
    await _checks().bkash_payment(_ref(), _bkash(BkashStage.CANCELLED, trx=None), out)
    assert out.checked.skipped == 1 and not out.divergences


@pytest.mark.parametrize("outcome,provider,kinds", [
    (MonetixStage.SUCCESS, Monetix(), []),
    (MonetixStage.SUCCESS, Monetix(paid=90000), [DivergenceKind.AMOUNT]),
    (MonetixStage.SUCCESS, Monetix(status="decline"), [DivergenceKind.STATE]),
    (MonetixStage.DECLINED, Monetix(status="awaiting customer"), [DivergenceKind.STATE]),
    (MonetixStage.EXPIRED, Monetix(status="success"), [DivergenceKind.STATE]),
    (MonetixStage.EXPIRED, Monetix(missing=True), []),
    (MonetixStage.DECLINED, Monetix(missing=True), [DivergenceKind.MISSING_AT_PROVIDER]),
])
async def test_monetix_purchases_are_compared_by_the_status_request(outcome, provider, kinds):
    res = MonetixPurchaseResult(payment_id="P-1", outcome=outcome, requested_poisha=100000,
                                paid_poisha=100000 if outcome is MonetixStage.SUCCESS else None)
    out = BatchResult()
    await _checks(monetix=provider).monetix_payment(
        _ref("monetix-P-1", "MonetixGatePurchase"), res, out)
    assert [d.kind for d in out.divergences] == kinds
