"""Refunds in the chaos run: a share of the captured bKash payments and successful Monetix purchases
get refunds once the payment has ended, while the run's other payments and faults go on.

Each refunded payment gets one kind from a shuffled deck (so a long run shows every kind): several
partial refunds, an over-refund that must be refused, the same refund id sent three times at once
and then with another amount (refused), a refund whose answer is lost after the provider applied it,
refund callbacks duplicated, replayed late, delayed past the ledger's wait or lost (resolved by the
status request), a refund the provider declines, and a worker killed with SIGKILL while a refund is
in flight. Every draw comes from a Random of its own, seeded from the run's seed (one for the deck,
one per payment), so the payments' own seeded draws are what they were before refunds existed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from contracts.common import Provider
from contracts.refunds import RefundRecord, RefundRequest, RefundsInput
from merchant_client import PaymentError, payment_result, purchase_result, refund

if TYPE_CHECKING:
    from chaos.harness import Chaos, Payment

PROVIDER_TIMEOUT = 2.0  # the run's provider timeout (chaos.harness), also the refund activities'
CALLBACK_WAIT = 3.0     # how long a Monetix refund waits for its callback before asking status

PARTIAL, OVER, SAME_ID, LOST, BEFORE_COMMIT, KILL = (
    "partial refunds", "over-refund refused", "same refund id at once, then another amount",
    "answer lost after commit", "5xx before commit", "worker kill -9 during a refund")
CB_DUPLICATE, CB_LATE, CB_DELAYED, CB_LOST, DECLINED = (
    "refund callback duplicated", "refund callback replayed late",
    "refund callback delayed past the wait", "refund callback lost (status request)",
    "declined by the provider")
BKASH_REFUND_KINDS = [f"bkash refund: {k}" for k in (PARTIAL, OVER, SAME_ID, LOST, BEFORE_COMMIT,
                                                     KILL)]
MONETIX_REFUND_KINDS = [f"monetix refund: {k}" for k in (PARTIAL, OVER, SAME_ID, LOST, CB_DUPLICATE,
                                                         CB_LATE, CB_DELAYED, CB_LOST, DECLINED,
                                                         KILL)]
SUCCEEDED, FAILED, REFUSED = "SUCCEEDED", "FAILED", "REFUSED"


@dataclass
class RefundStep:
    refund_id: str
    amount_poisha: int
    expect: str                 # SUCCEEDED, FAILED or REFUSED
    copies: int = 1             # identical requests sent at once
    kill_worker: bool = False   # SIGKILL the worker once the refund is accepted
    refusal: str = ""           # REFUSED: what the refusal must say
    outcome: str = ""           # what the merchant got: SUCCEEDED, FAILED, REFUSED, or an error
    detail: str = ""
    provider_refund_ids: set[str] = field(default_factory=set)


@dataclass
class RefundPlan:
    kind: str
    rng: random.Random
    steps: list[RefundStep] = field(default_factory=list)
    executed: bool = False
    captured_poisha: int = 0    # bKash: captured; Monetix: paid
    provider_payment_id: str | None = None  # bKash paymentID
    notes: list[str] = field(default_factory=list)

    @property
    def refused_ids(self) -> set[str]:
        """Refund ids only ever refused: they must be in no ledger at all."""
        ok = {s.refund_id for s in self.steps if s.expect != REFUSED}
        return {s.refund_id for s in self.steps if s.expect == REFUSED} - ok


class RefundDeck:
    """Which payments get refunds and of what kind: dealt at planning time, in payment order, from
    a Random of its own (so the payments' draws are unchanged)."""

    def __init__(self, seed: int, share: float, kinds: list[str] | None = None) -> None:
        self.seed, self.share = seed, share
        self.rng = random.Random(f"chaos-refunds-{seed}")
        self._kinds = {"bkash": [k for k in BKASH_REFUND_KINDS if kinds is None or k in kinds],
                       "monetix": [k for k in MONETIX_REFUND_KINDS if kinds is None or k in kinds]}
        unknown = set(kinds or ()) - set(BKASH_REFUND_KINDS) - set(MONETIX_REFUND_KINDS)
        if unknown:
            raise ValueError(f"unknown refund kinds {sorted(unknown)}")
        self._decks: dict[str, list[str]] = {"bkash": [], "monetix": []}

    def plan(self, i: int, kind: str, refundable: bool) -> RefundPlan | None:
        """A refund plan for payment ``i`` if it is meant to end captured / paid and its draw says so."""
        if self.share <= 0 or not refundable or not self._kinds[kind] \
                or self.rng.random() >= self.share:
            return None
        deck = self._decks[kind]
        if not deck:
            deck.extend(self._kinds[kind])
            self.rng.shuffle(deck)
        return RefundPlan(deck.pop(), random.Random(f"chaos-refunds-{self.seed}-{i}"))


def ledger_input(chaos: Chaos, p: Payment) -> RefundsInput:
    provider = Provider.BKASH if p.kind == "bkash" else Provider.MONETIX
    return RefundsInput(provider=provider, payment_key=p.key, callback_base_url=chaos.endpoint.url,
                        provider_timeout=timedelta(seconds=PROVIDER_TIMEOUT),
                        callback_wait=timedelta(seconds=CALLBACK_WAIT))


async def drive_refunds(chaos: Chaos, p: Payment) -> None:
    """Once the payment has ended: its refunds, one step after the other, with their faults."""
    plan = p.refund
    if plan is None:
        return
    try:
        if not await _refundable(chaos, p, plan):
            return
        plan.executed = True
        chaos.report.injected[plan.kind] += 1
        plan.steps = _steps(p, plan)
        await _inject(chaos, p, plan)
        for step in plan.steps:
            await _run_step(chaos, p, plan, step)
    except Exception as exc:  # noqa: BLE001 - the invariants decide; keep a note
        plan.notes.append(f"refund driver: {type(exc).__name__}: {exc}")


async def _refundable(chaos: Chaos, p: Payment, plan: RefundPlan) -> bool:
    if not p.started:
        return False
    if p.kind == "bkash":
        res = await _call(lambda: payment_result(chaos.client, p.key))
        plan.captured_poisha, plan.provider_payment_id = res.amount_poisha, res.payment_id
        return res.stage.value == "CAPTURED"
    res = await _call(lambda: purchase_result(chaos.client, p.key))
    plan.captured_poisha = res.paid_poisha or 0
    return res.outcome.value == "SUCCESS" and plan.captured_poisha > 0


def _parts(rng: random.Random, total: int, n: int) -> list[int]:
    """``total`` units in ``n`` positive parts (``n`` at most ``total``)."""
    n = max(1, min(n, total))
    cuts = sorted(rng.sample(range(1, total), n - 1)) if n > 1 else []
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


def _steps(p: Payment, plan: RefundPlan) -> list[RefundStep]:
    """The refunds of the plan's kind, in whole BDT (100 poisha), sized to what was captured."""
    rng, units, kind = plan.rng, plan.captured_poisha // 100, plan.kind.split(": ", 1)[1]
    ids = (f"{p.key}-r{n}" for n in range(1, 100))

    def ok(u: int, **kw) -> RefundStep:
        return RefundStep(next(ids), u * 100, SUCCEEDED, **kw)

    if kind == PARTIAL:
        n = rng.randint(2, 3)
        total = units if rng.random() < 0.3 else rng.randint(min(n, units), max(n, units - 1))
        return [ok(u) for u in _parts(rng, min(total, units), n)]
    if kind == OVER:
        first = rng.randint(1, max(1, units // 2))
        steps = [ok(first), RefundStep(next(ids), (units - first + rng.randint(1, 20)) * 100,
                                       REFUSED)]
        if units > first and rng.random() < 0.5:
            steps.append(ok(units - first))  # then exactly what is left: fully refunded
        return steps
    if kind == SAME_ID:
        a = rng.randint(1, units)
        first = ok(a, copies=3)
        other = a + 1 if a == 1 or rng.random() < 0.5 else a - 1
        return [first, RefundStep(first.refund_id, other * 100, REFUSED,
                                  refusal="already a refund")]
    if kind == DECLINED:
        first = RefundStep(next(ids), rng.randint(1, units) * 100, FAILED)
        return [first, ok(rng.randint(1, units))]  # a declined refund holds nothing back
    if kind == KILL:
        a = rng.randint(1, units)
        steps = [ok(a, kill_worker=True)]
        if units > a and rng.random() < 0.5:
            steps.append(ok(rng.randint(1, units - a)))
        return steps
    # A fault on the first refund; sometimes a second one after it (the ledger must know the first).
    a = rng.randint(1, max(1, units // 2))
    steps = [ok(a)]
    if units > a and rng.random() < 0.6:
        steps.append(ok(rng.randint(1, units - a)))
    return steps


async def _inject(chaos: Chaos, p: Payment, plan: RefundPlan) -> None:
    """The plan's provider fault, matched to this payment only."""
    rng, kind = plan.rng, plan.kind.split(": ", 1)[1]
    if p.kind == "bkash":
        pid = plan.provider_payment_id or ""
        if kind == LOST:
            how = rng.choice(["drop_connection", "http_error", "delay_after_commit"])
            await chaos.bkash.lose_refund_answer(pid, how, delay_seconds=PROVIDER_TIMEOUT + 1.5)
            plan.notes.append(f"refund answer lost: {how}")
            if rng.random() < 0.3:  # and the first refund status after it too
                await chaos.bkash.lose_refund_answer(pid, "http_error", operation="refund_status")
                plan.notes.append("first refund status answered 503")
        elif kind == BEFORE_COMMIT:
            await chaos.bkash.add_fault("refund", "http_error", status=503,
                                        times=rng.randint(1, 2), match={"paymentID": pid})
        return
    match = {"payment_id": p.key}
    if kind == LOST:
        how = rng.choice(["drop_connection", "http_error", "delay_after_commit"])
        extra = {"delay_after_commit": {"delay_seconds": PROVIDER_TIMEOUT + 1.5},
                 "http_error": {"status": 502, "commit": True},
                 "drop_connection": {"commit": True}}[how]
        await chaos.monetix.add_fault("refund", how, match=match, **extra)
        plan.notes.append(f"refund answer lost: {how}")
    elif kind == DECLINED:
        await chaos.monetix.decline_next_refund(p.key)
    elif kind in (CB_DUPLICATE, CB_LATE, CB_DELAYED, CB_LOST):
        fault, extra = {CB_DUPLICATE: ("duplicate", {}),
                        CB_LATE: ("late_replay", {"delay_seconds": 2.0}),
                        CB_DELAYED: ("delay", {"delay_seconds": CALLBACK_WAIT + 1.5}),
                        CB_LOST: ("lose", {})}[kind]
        await chaos.monetix.add_fault("callback", fault, match={**match, "operation_type": "refund"},
                                      **extra)


def _request(p: Payment, step: RefundStep, amount_poisha: int | None = None) -> RefundRequest:
    bkash = p.kind == "bkash"
    return RefundRequest(provider=Provider.BKASH if bkash else Provider.MONETIX, payment_key=p.key,
                         refund_id=step.refund_id, amount_poisha=amount_poisha or step.amount_poisha,
                         # the refund id in the reason: the bKash sandbox's refund list shows it
                         reason=f"chaos {step.refund_id}", sku="chaos-room" if bkash else None)


async def _run_step(chaos: Chaos, p: Payment, plan: RefundPlan, step: RefundStep) -> None:
    req, ledger = _request(p, step), ledger_input(chaos, p)

    def send(wait: bool = True) -> Callable[[], Awaitable[RefundRecord]]:
        return lambda: refund(chaos.client, req, task_queue=chaos.task_queue, ledger=ledger,
                              wait=wait)

    if step.kill_worker:
        # Accepted, then the worker is killed while the refund is (about to be) at the provider;
        # the same request again then waits for the refund to end.
        after, down_for = plan.rng.uniform(0.0, 0.5), plan.rng.uniform(0.2, 1.0)
        # With several workers, one of them (the refund may be on any): drawn only then, so a
        # one-worker run's draws are what they were.
        workers = chaos.workers
        worker = workers[plan.rng.randrange(len(workers))] if len(workers) > 1 else workers[0]
        # Paced like every kill: the refund is sent when the worker's next kill is due, and
        # that kill follows it (chaos.pacing.ProcessFaults.at_next_kill).
        async with chaos.faults.at_next_kill(worker) as kill_it_myself:
            first = await _attempt(step, send(wait=False))
            if first is None:
                return
            await asyncio.sleep(after)
            plan.notes.append(f"{worker.name} killed {after:.2f} s after {step.refund_id} was "
                              "accepted" + (f", down for {down_for:.1f} s" if kill_it_myself
                                            else " (the run's kill)"))
            if kill_it_myself:
                await worker.restart(down_for=down_for)
    results = await asyncio.gather(*(_attempt(step, send()) for _ in range(step.copies)))
    records = [r for r in results if r is not None]
    if len(records) != len(results):
        return  # the refusal or error is in step.outcome
    stages = {r.stage.value for r in records}
    step.outcome = stages.pop() if len(stages) == 1 else f"different answers {sorted(stages)}"
    step.provider_refund_ids = {r.provider_refund_id for r in records if r.provider_refund_id}
    step.detail = records[0].detail


async def _attempt(step: RefundStep, send: Callable[[], Awaitable[RefundRecord]]
                   ) -> RefundRecord | None:
    """One merchant request; a refusal or an error is kept in ``step.outcome`` (None returned)."""
    try:
        return await _call(send)
    except PaymentError as err:
        step.outcome, step.detail = REFUSED, str(err)
    except Exception as exc:  # noqa: BLE001
        step.outcome = f"error: {type(exc).__name__}: {exc}"
    return None


async def _call(fn: Callable[[], Awaitable], *, budget: float = 150.0,
                attempt_timeout: float = 10.0):
    """Merchant code in a chaotic world: retry while the server, the worker or the endpoint is
    restarting (every call here is idempotent: refund ids, update ids, USE_EXISTING). A
    PaymentError other than "unavailable" is the answer (a refusal) and is raised. Attempts are
    short: a call waiting on a dev server that restarted can hang, while calling again re-attaches
    to the same update (its id) or result at once."""
    deadline = time.monotonic() + budget
    while True:
        try:
            return await asyncio.wait_for(fn(), attempt_timeout)
        except PaymentError as err:
            if "unavailable" not in str(err) or time.monotonic() > deadline:
                raise
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)
