"""The chaos run's refund invariants catch what they exist for (no server: fake ledgers). A check
that never fires proves nothing, so each breach is planted once and must be reported."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timezone

import pytest

import chaos.invariants as invariants
from chaos.harness import Payment, Report
from chaos.invariants import RefundInvariants
from chaos.refunds import REFUSED, SUCCEEDED, RefundPlan, RefundStep
from contracts.common import Provider
from contracts.refunds import LedgerStage, RefundRecord, RefundsState, RefundStage

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
KEY = "CHAOS-1-0"


class FakeBkash:
    def __init__(self, refunds: list[tuple[str, str, int]], captured: int = 50000) -> None:
        self._refunds = refunds  # (refund id in the reason, refundTrxID, amount_poisha)
        self._captured = captured

    async def ledger(self, invoice: str) -> list[dict]:
        lines = [{"kind": "AUTHORIZE", "amount_poisha": self._captured},
                 {"kind": "CAPTURE", "amount_poisha": self._captured}]
        return lines + [{"kind": "REFUND", "refund_trx_id": trx, "amount_poisha": amount}
                        for _, trx, amount in self._refunds]

    async def refunds(self, invoice: str) -> list[dict]:
        return [{"reason": f"chaos {rid}", "refund_trx_id": trx, "amount_poisha": amount}
                for rid, trx, amount in self._refunds]


class NoHistory:
    def get_workflow_handle(self, workflow_id):
        raise RuntimeError("no server in this test")


def record(refund_id: str, amount: int, stage: RefundStage, trx: str | None) -> RefundRecord:
    return RefundRecord(refund_id=refund_id, amount_poisha=amount, reason=f"chaos {refund_id}",
                        stage=stage, requested_at=NOW, provider_refund_id=trx)


def plan(*steps: RefundStep) -> RefundPlan:
    return RefundPlan("bkash refund: partial refunds", random.Random(1), list(steps),
                      executed=True, captured_poisha=50000)


async def violations(monkeypatch, bkash: FakeBkash, records: list[RefundRecord],
                     refund_plan: RefundPlan) -> list[str]:
    refunded = sum(r.amount_poisha for r in records if r.stage is RefundStage.SUCCEEDED)
    state = RefundsState(workflow_id=f"refunds-bkash-{KEY}", provider=Provider.BKASH,
                         payment_key=KEY, stage=LedgerStage.REFUNDABLE, captured_poisha=50000,
                         refunded_poisha=refunded, refunds=records)

    async def fake_refunds(client, provider, key):
        return state

    monkeypatch.setattr(invariants, "refunds", fake_refunds)
    p = Payment("bkash", KEY, "bkash: none", "approve", "deliver", started=True,
                refund=refund_plan)
    report = Report(1, 1, injected=Counter({refund_plan.kind: 1}))
    await RefundInvariants(NoHistory(), bkash, None, report).check([p], budget=0)
    return report.violations


def ok(refund_id: str, amount: int, trx: str) -> RefundStep:
    return RefundStep(refund_id, amount, SUCCEEDED, outcome=SUCCEEDED, provider_refund_ids={trx})


async def test_a_clean_ledger_has_no_violation(monkeypatch):
    found = await violations(
        monkeypatch, FakeBkash([("r1", "T1", 30000), ("r2", "T2", 20000)]),
        [record("r1", 30000, RefundStage.SUCCEEDED, "T1"),
         record("r2", 20000, RefundStage.SUCCEEDED, "T2")],
        plan(ok("r1", 30000, "T1"), ok("r2", 20000, "T2"),
             RefundStep("r3", 100, REFUSED, outcome=REFUSED, detail="more than")))
    assert found == []


@pytest.mark.parametrize("provider_refunds, records, steps, expected", [
    pytest.param([("r1", "T1", 30000), ("r1", "T9", 30000)],
                 [record("r1", 30000, RefundStage.SUCCEEDED, "T1")], [ok("r1", 30000, "T1")],
                 "made 2 refunds under its id", id="one refund id moved money twice"),
    pytest.param([("r1", "T1", 30000), ("r3", "T3", 100)],
                 [record("r1", 30000, RefundStage.SUCCEEDED, "T1")],
                 [ok("r1", 30000, "T1"), RefundStep("r3", 100, REFUSED, outcome=REFUSED)],
                 "refused refund r3", id="a refused refund id moved money"),
    pytest.param([("r1", "T1", 30000)], [record("r1", 30000, RefundStage.FAILED, None)],
                 [RefundStep("r1", 30000, "FAILED", outcome="FAILED")],
                 "FAILED, but the provider refunded it", id="a failed refund moved money"),
    pytest.param([("r1", "T1", 30000), ("r2", "T2", 30000)],
                 [record("r1", 30000, RefundStage.SUCCEEDED, "T1"),
                  record("r2", 30000, RefundStage.SUCCEEDED, "T2")],
                 [ok("r1", 30000, "T1"), ok("r2", 30000, "T2")],
                 "more than the 50000 captured", id="more refunded than captured"),
    pytest.param([("r1", "T1", 30000)], [record("r1", 30000, RefundStage.REFUNDING, None)],
                 [ok("r1", 30000, "T1")], "not final", id="a refund never ends"),
    pytest.param([("r1", "T1", 30000)], [record("r1", 30000, RefundStage.SUCCEEDED, "T1")],
                 [ok("r1", 30000, "T1"),
                  RefundStep("r1", 20000, REFUSED, refusal="already a refund", outcome=SUCCEEDED)],
                 "expected REFUSED, got SUCCEEDED", id="another amount was not refused"),
])
async def test_each_breach_is_reported(monkeypatch, provider_refunds, records, steps, expected):
    found = await violations(monkeypatch, FakeBkash(provider_refunds), records, plan(*steps))
    assert any(expected in v for v in found), found


async def test_the_ledger_must_agree_with_the_sandbox(monkeypatch):
    found = await violations(
        monkeypatch, FakeBkash([("r1", "T1", 30000)]),
        [record("r1", 30000, RefundStage.SUCCEEDED, "T1"),
         record("r2", 10000, RefundStage.SUCCEEDED, None)],  # the ledger counts a refund bKash lacks
        plan(ok("r1", 30000, "T1"), ok("r2", 10000, "T2")))
    assert any("the refunds ledger says refunded 40000" in v for v in found), found
    assert any("refund r2 SUCCEEDED, but the provider made 0" in v for v in found), found
