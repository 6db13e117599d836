"""What the provider says about one closed payment or refund, against what the project recorded
(README "Reconciliation"): bKash by Search Transaction (the payment's trxID, a refund's refundTrxID)
and Refund Status, Monetix by the status request. Never Query Payment: bKash's UAT allows it only
after an execute without an answer (production.md §2), and these payments are long closed.

Each check appends to a ``BatchResult``: a count, and a ``Divergence`` per disagreement. A provider
that does not answer raises (the activity fails, Temporal retries it); an answer that cannot be
read, or an account this worker has no settings for, makes the item ``Unchecked``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from activities.accounts import AccountClients
from contracts.bkash import BkashPaymentResult, BkashStage, TransactionStatus
from contracts.monetix import MonetixPurchaseResult, MonetixStage
from contracts.monetix_status import REFUNDED, SUCCESS
from contracts.money import format_bdt, parse_bdt
from contracts.reconciliation import (
    BatchResult,
    CheckOptions,
    Divergence,
    DivergenceKind,
    ItemRef,
    Window,
    account_of,
)
from contracts.common import Provider
from contracts.refunds import RefundRecord, RefundsState, RefundStage
from providers.bkash import BkashClient
from providers.bkash_errors import BkashError
from providers.monetix import MonetixGateClient, MonetixPaymentNotFound, MonetixRefunds

# Search Transaction of a trxID bKash does not hold: {"statusCode":"2033","statusMessage":
# "Transaction Not Found"} ([OBS], bkash-api.md §9).
TRANSACTION_NOT_FOUND = "2033"
# A Monetix purchase whose customer's money reached the merchant, refunded since or not (§4.3).
PAID_STATUSES = frozenset({SUCCESS, *REFUNDED})
SALE_OPERATION = "sale"
# What bKash's search must report for a payment the project ended as ...
_BKASH_EXPECTED = {BkashStage.CAPTURED: {TransactionStatus.COMPLETED.value},
                   BkashStage.VOIDED: {TransactionStatus.CANCELLED.value}}
# ... and for any other final stage with a trxID (declined after execute, cancelled by an
# operator): no money held or taken [INF: no source shows search of such a payment].
_NO_MONEY = {TransactionStatus.CANCELLED.value, TransactionStatus.FAILED.value}

KnownRefunds = Callable[[str], Awaitable[set[str]]]


class Pacer:
    """At most ``rate`` provider calls a second from one activity attempt: each call takes the next
    free slot, so a burst of items is spread out instead of sent at once."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self.calls = 0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        self.calls += 1
        if slot > now:
            await asyncio.sleep(slot - now)


class Checks:
    def __init__(self, bkash: AccountClients[BkashClient], monetix: AccountClients[MonetixGateClient],
                 pacer: Pacer, window: Window, options: CheckOptions,
                 known_refunds: KnownRefunds) -> None:
        self._bkash = bkash
        self._monetix = monetix
        self._pace = pacer.wait
        self._window = window
        self._options = options
        self._known_refunds = known_refunds  # refund ids the payment's ledger holds

    # -- payments ---------------------------------------------------------------------------

    async def bkash_payment(self, ref: ItemRef, res: BkashPaymentResult, out: BatchResult) -> None:
        if not res.trx_id:
            # Search needs a trxID, and Query Payment is not ours to call: nothing to ask bKash.
            out.checked.skipped += 1
            return
        client = self._bkash.get(account_of(ref.workflow_id))
        found = self._finding(ref, Provider.BKASH, res.stage.value, amount_poisha=res.amount_poisha,
                              provider_payment_id=res.payment_id, trx_id=res.trx_id)
        out.checked.bkash_payments += 1
        await self._pace()
        try:
            details = await client.search_transaction(res.trx_id)
        except BkashError as err:
            if err.code != TRANSACTION_NOT_FOUND:
                raise
            out.divergences.append(found(
                DivergenceKind.MISSING_AT_PROVIDER, project=res.stage.value, provider_says="2033",
                detail=f"bKash's search does not know trxID {res.trx_id} of this {res.stage.value}"
                       " payment"))
            return
        status = details.transaction_status
        expected = _BKASH_EXPECTED.get(res.stage, _NO_MONEY)
        if status not in expected:
            out.divergences.append(found(
                DivergenceKind.STATE, project=res.stage.value, provider_says=status,
                detail=f"the project ended it {res.stage.value}, bKash's search reports {status}"
                       f" (expected {' or '.join(sorted(expected))})"))
        paid = _bdt(details.amount)
        if paid != res.amount_poisha:
            out.divergences.append(found(
                DivergenceKind.AMOUNT, project=format_bdt(res.amount_poisha),
                provider_says=details.amount, provider_amount_poisha=paid,
                detail=f"bKash's search reports {details.amount} BDT, the project "
                       f"{format_bdt(res.amount_poisha)} BDT"))
        if res.stage is BkashStage.CAPTURED and res.payment_id:
            await self._pace()
            held = await client.refund_status(payment_id=res.payment_id, trx_id=res.trx_id)
            done = [r for r in held.refunds if r.completed]
            known = await self._known_refunds(ref.workflow_id) if done else set()
            for r in done:
                if r.refund_trx_id not in known:
                    out.divergences.append(found(
                        DivergenceKind.UNKNOWN_REFUND, refund_id=r.refund_trx_id,
                        project="no such refund", provider_says=_amount_text(r.amount_poisha),
                        provider_amount_poisha=r.amount_poisha,
                        detail=f"bKash holds refund {r.refund_trx_id} of "
                               f"{_amount_text(r.amount_poisha)} BDT that the project's refund "
                               "ledger does not (made outside the project?)"))

    async def monetix_payment(self, ref: ItemRef, res: MonetixPurchaseResult,
                              out: BatchResult) -> None:
        if res.outcome is MonetixStage.FAILED:
            out.checked.skipped += 1  # refused before anything was sent to Monetix
            return
        client = self._monetix.get(account_of(ref.workflow_id))
        found = self._finding(ref, Provider.MONETIX, res.outcome.value,
                              amount_poisha=res.paid_poisha or res.requested_poisha,
                              provider_payment_id=res.payment_id, trx_id=res.provider_payment_id)
        out.checked.monetix_payments += 1
        snapshot = await self._monetix_status(client, ref, res.payment_id)
        if snapshot is None:
            if res.outcome in (MonetixStage.SUCCESS, MonetixStage.DECLINED):
                out.divergences.append(found(
                    DivergenceKind.MISSING_AT_PROVIDER, project=res.outcome.value,
                    provider_says="3061",
                    detail=f"Monetix's status request does not know payment_id {res.payment_id},"
                           f" which the project ended {res.outcome.value}"))
            return  # EXPIRED: a Payment Page never opened is unknown to Monetix, rightly
        status = snapshot.payment_status
        paid = status in PAID_STATUSES
        if (res.outcome is MonetixStage.SUCCESS) != paid or (
                res.outcome is MonetixStage.DECLINED and not snapshot.snapshot.final):
            out.divergences.append(found(
                DivergenceKind.STATE, project=res.outcome.value, provider_says=status,
                detail=f"the project ended it {res.outcome.value}, Monetix reports {status!r}"))
        sale = next((op for op in reversed(snapshot.snapshot.operations)
                     if op.type == SALE_OPERATION), None)
        # The sale operation keeps what was paid; payment.sum is the balance after refunds (§3.6).
        provider_paid = sale.initial_poisha if sale and sale.initial_poisha is not None else None
        if res.outcome is MonetixStage.SUCCESS and paid and provider_paid is not None \
                and provider_paid != res.paid_poisha:
            out.divergences.append(found(
                DivergenceKind.AMOUNT, project=_amount_text(res.paid_poisha),
                provider_says=format_bdt(provider_paid), provider_amount_poisha=provider_paid,
                detail=f"Monetix reports {format_bdt(provider_paid)} BDT paid, the project "
                       f"credited {_amount_text(res.paid_poisha)} BDT"))
        done = [op for op in snapshot.refunds if op.succeeded and op.id]
        known = await self._known_refunds(ref.workflow_id) if done else set()
        for op in done:
            if op.id not in known:
                out.divergences.append(found(
                    DivergenceKind.UNKNOWN_REFUND, refund_id=op.id, project="no such refund",
                    provider_says=_amount_text(op.amount_poisha),
                    provider_amount_poisha=op.amount_poisha,
                    detail=f"Monetix holds refund operation {op.id} of "
                           f"{_amount_text(op.amount_poisha)} BDT that the project's refund "
                           "ledger does not"))

    # -- refunds ------------------------------------------------------------------------------

    async def refunds(self, ref: ItemRef, state: RefundsState, out: BatchResult) -> None:
        """The ledger's refunds that ended in the window."""
        records = [r for r in state.refunds if r.stage.is_final and self._window.holds(r.finished_at)]
        if not records:
            return
        payment_key = ref.workflow_id.removeprefix("refunds-")
        if state.provider is Provider.BKASH:
            await self._bkash_refunds(ref, payment_key, records, out)
        else:
            await self._monetix_refunds(ref, payment_key, state.payment_key, records, out)

    async def _bkash_refunds(self, ref: ItemRef, payment_key: str, records: list[RefundRecord],
                             out: BatchResult) -> None:
        client = self._bkash.get(account_of(payment_key))
        for r in records:
            if not r.provider_refund_id:
                out.checked.skipped += 1  # failed before bKash gave it a refundTrxID
                continue
            out.checked.refunds += 1
            found = self._finding(ref, Provider.BKASH, r.stage.value, payment_key=payment_key,
                                  amount_poisha=r.amount_poisha, refund_id=r.refund_id,
                                  trx_id=r.provider_refund_id)
            await self._pace()
            try:
                details = await client.search_transaction(r.provider_refund_id)
            except BkashError as err:
                if err.code != TRANSACTION_NOT_FOUND:
                    raise
                if r.stage is RefundStage.SUCCEEDED:
                    out.divergences.append(found(
                        DivergenceKind.MISSING_AT_PROVIDER, project=r.stage.value,
                        provider_says="2033", detail=f"bKash's search does not know refundTrxID "
                        f"{r.provider_refund_id} of refund {r.refund_id}"))
                continue
            completed = details.transaction_status == TransactionStatus.COMPLETED.value
            if completed != (r.stage is RefundStage.SUCCEEDED):
                out.divergences.append(found(
                    DivergenceKind.STATE, project=r.stage.value,
                    provider_says=details.transaction_status,
                    detail=f"refund {r.refund_id} is {r.stage.value} in the ledger, bKash "
                           f"reports {details.transaction_status}"))
            amount = _bdt(details.amount)
            if r.stage is RefundStage.SUCCEEDED and amount != r.amount_poisha:
                out.divergences.append(found(
                    DivergenceKind.AMOUNT, project=format_bdt(r.amount_poisha),
                    provider_says=details.amount, provider_amount_poisha=amount,
                    detail=f"refund {r.refund_id}: bKash reports {details.amount} BDT"))

    async def _monetix_refunds(self, ref: ItemRef, payment_key: str, payment_id: str,
                               records: list[RefundRecord], out: BatchResult) -> None:
        client = self._monetix.get(account_of(payment_key))
        held = await self._monetix_status(client, ref, payment_id)
        ops = {op.id: op for op in (held.refunds if held else [])}
        for r in records:
            out.checked.refunds += 1
            found = self._finding(ref, Provider.MONETIX, r.stage.value, payment_key=payment_key,
                                  amount_poisha=r.amount_poisha, refund_id=r.refund_id,
                                  provider_payment_id=payment_id, trx_id=r.provider_refund_id)
            op = ops.get(r.provider_refund_id)
            if op is None:
                if r.stage is RefundStage.SUCCEEDED:
                    out.divergences.append(found(
                        DivergenceKind.MISSING_AT_PROVIDER, project=r.stage.value,
                        provider_says="no such operation", detail=f"Monetix lists no refund "
                        f"operation {r.provider_refund_id} for refund {r.refund_id}"))
                continue
            if op.final and op.succeeded != (r.stage is RefundStage.SUCCEEDED):
                out.divergences.append(found(
                    DivergenceKind.STATE, project=r.stage.value, provider_says=op.status,
                    detail=f"refund {r.refund_id} is {r.stage.value} in the ledger, Monetix "
                           f"reports {op.status!r}"))
            if op.succeeded and op.amount_poisha is not None and op.amount_poisha != r.amount_poisha:
                out.divergences.append(found(
                    DivergenceKind.AMOUNT, project=format_bdt(r.amount_poisha),
                    provider_says=format_bdt(op.amount_poisha),
                    provider_amount_poisha=op.amount_poisha,
                    detail=f"refund {r.refund_id}: Monetix reports {format_bdt(op.amount_poisha)}"
                           " BDT"))

    # -- helpers -------------------------------------------------------------------------------

    async def _monetix_status(self, client: MonetixGateClient, ref: ItemRef,
                              payment_id: str) -> MonetixRefunds | None:
        """The status answer read for the sale and its refunds; None for 3061 (not registered)."""
        # Monetix wants no status request within 10 s of the sale (§3.4); only a window that is
        # reconciled as it closes can meet one that young.
        wait = (ref.started_at + self._options.monetix_status_delay
                - datetime.now(timezone.utc)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._pace()
        try:
            return await client.refund_status(payment_id)
        except MonetixPaymentNotFound:
            return None

    def _finding(self, ref: ItemRef, provider: Provider, stage: str, *,
                 payment_key: str | None = None, **fields: object):
        key = payment_key or ref.workflow_id

        def make(kind: DivergenceKind, **more: object) -> Divergence:
            return Divergence.model_validate({
                "kind": kind, "provider": provider, "source": ref.workflow_id,
                "payment_key": key, "account_id": account_of(key), "stage": stage,
                **fields, **more})
        return make


def _bdt(text: str) -> int | None:
    try:
        return parse_bdt(text)
    except ValueError:
        return None


def _amount_text(poisha: int | None) -> str:
    return "?" if poisha is None else format_bdt(poisha)
