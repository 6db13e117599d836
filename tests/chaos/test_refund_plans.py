"""Refunds in the chaos run draw from Randoms of their own: a seed plans the same payments with or
without refunds, and the refund deck deals every kind (no server)."""

from __future__ import annotations

import random

from chaos.harness import Chaos
from chaos.refunds import (
    BKASH_REFUND_KINDS,
    FAILED,
    MONETIX_REFUND_KINDS,
    REFUSED,
    SUCCEEDED,
    RefundPlan,
    _steps,
)


def planned(tmp_path, share: float, count: int = 200):
    chaos = Chaos(11, count, tmp_path, refund_share=share)
    return [chaos._plan(i) for i in range(count)]


def test_refunds_leave_the_payments_seeded_draws_unchanged(tmp_path):
    without, with_refunds = planned(tmp_path, 0.0), planned(tmp_path, 0.5)
    assert [(p.fault, p.customer, p.decision) for p in without] == \
        [(p.fault, p.customer, p.decision) for p in with_refunds]
    assert all(p.refund is None for p in without)
    kinds = {p.refund.kind for p in with_refunds if p.refund}
    assert kinds == set(BKASH_REFUND_KINDS) | set(MONETIX_REFUND_KINDS)
    # Only payments meant to end captured (approved, delivered) or paid get a plan.
    for p in with_refunds:
        if p.refund and p.kind == "bkash":
            assert (p.customer, p.decision) == ("approve", "deliver")
        if p.refund and p.kind == "monetix":
            assert p.customer in ("pay", "pay_more", "omit_account")


def test_every_plan_stays_within_what_was_captured(tmp_path):
    for p in planned(tmp_path, 1.0):
        if p.refund is None:
            continue
        for captured in (100, 1000, 37_500, 90_000):
            plan = RefundPlan(p.refund.kind, random.Random(p.key), captured_poisha=captured)
            steps = _steps(p, plan)
            assert steps and all(s.amount_poisha > 0 for s in steps)
            meant = sum(s.amount_poisha for s in steps if s.expect == SUCCEEDED)
            assert meant <= captured, (p.refund.kind, captured, steps)
            assert {s.expect for s in steps} <= {SUCCEEDED, FAILED, REFUSED}
            if "over-refund" in p.refund.kind:
                over = next(s for s in steps if s.expect == REFUSED)
                assert over.amount_poisha > captured - steps[0].amount_poisha
