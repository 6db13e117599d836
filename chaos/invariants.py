"""The chaos run's invariants, checked after every workflow closed, against the sandboxes' ledgers
(the providers' truth), not the workflows' own view of themselves: the payments' (``Invariants``)
and their refunds' (``RefundInvariants``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from contracts.common import Provider
from contracts.money import format_bdt
from contracts.refunds import RefundsState
from merchant_client import PaymentError, payment_result, purchase_result, purchase_state, refunds
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.monetix.admin import MonetixSandboxAdmin

from chaos.refunds import REFUSED
from chaos.tokens import TOKEN_FAULTS, token_wait

if TYPE_CHECKING:
    from chaos.harness import Payment, Report
    from chaos.refunds import RefundPlan


class Invariants:
    """The payments' invariants; every violation goes to ``report.violations``, every payment
    without one counts as having survived its fault."""

    def __init__(self, client: Client, bkash: BkashSandboxAdmin, monetix: MonetixSandboxAdmin,
                 report: Report, *, every_token_wait: bool = False) -> None:
        self.client, self.bkash, self.monetix, self.report = client, bkash, monetix, report
        # Which bKash payments' timelines are read for a wait for a token: every one (the
        # spent-budget mode), or those whose token a fault rejected (none other can meet it).
        self.every_token_wait = every_token_wait

    async def check(self, payments: list[Payment]) -> None:
        for p in payments:
            before = len(self.report.violations)
            if not p.started:
                self.report.violations.append(f"{p.key}: never started ({'; '.join(p.notes)})")
            elif p.kind == "bkash":
                await self.check_bkash(p)
            else:
                await self.check_monetix(p)
            await self.check_history(("bkash-" if p.kind == "bkash" else "monetix-") + p.key)
            if len(self.report.violations) == before:
                self.report.survived[p.fault] += 1

    def process_faults_survived(self) -> None:
        """The process faults hit the whole run: survived when nothing at all was violated."""
        if not self.report.violations:
            for kind in self.report.injected:
                if kind.startswith("process:"):
                    self.report.survived[kind] = self.report.injected[kind]

    async def result(self, p: Payment, result):
        workflow_id = ("bkash-" if p.kind == "bkash" else "monetix-") + p.key
        try:
            return await asyncio.wait_for(result(self.client, p.key), 30)
        except Exception as exc:  # noqa: BLE001
            self.report.violations.append(f"{workflow_id}: no result ({type(exc).__name__}: {exc})")
            return None

    async def check_bkash(self, p: Payment) -> None:
        res = await self.result(p, payment_result)
        if res is None:
            return
        self.report.outcomes[f"bkash {res.stage.value}"] += 1
        ledger = await self.bkash.ledger(invoice=p.key)
        by_payment: dict[str, Counter] = defaultdict(Counter)
        for entry in ledger:
            by_payment[entry["payment_id"]][entry["kind"]] += 1
        v = self.report.violations
        authorizations = sum(c["AUTHORIZE"] for c in by_payment.values())
        if authorizations > 1:
            v.append(f"{p.key}: {authorizations} authorizations for one invoice")
        for pid, kinds in by_payment.items():
            if kinds["CAPTURE"] > 1:
                v.append(f"{p.key}/{pid}: captured {kinds['CAPTURE']} times")
            if kinds["VOID"] > 1:
                v.append(f"{p.key}/{pid}: voided {kinds['VOID']} times")
            if kinds["CAPTURE"] and kinds["VOID"]:
                v.append(f"{p.key}/{pid}: both captured and voided")
            if kinds["AUTHORIZE"] and not (kinds["CAPTURE"] or kinds["VOID"] or kinds["EXPIRE"]):
                v.append(f"{p.key}/{pid}: authorization left held (workflow ended {res.stage.value})")
        mine = by_payment.get(res.payment_id or "", Counter())
        stage = res.stage.value
        if stage == "CAPTURED" and mine["CAPTURE"] != 1:
            v.append(f"{p.key}: workflow says CAPTURED, ledger has {dict(mine)}")
        if stage == "VOIDED" and not (mine["VOID"] or mine["EXPIRE"]):
            v.append(f"{p.key}: workflow says VOIDED, ledger has {dict(mine)}")
        if stage in ("DECLINED", "CANCELLED", "EXPIRED", "FAILED") and authorizations:
            v.append(f"{p.key}: workflow ended {stage} but money moved: {ledger}")
        v.extend(bkash_amount_violations(p, ledger))
        v.extend(approval_violations(p.key, await self.bkash.payments(p.key), authorizations,
                                     stage, res.detail))
        if self.every_token_wait or p.fault in TOKEN_FAULTS:
            await token_wait(self.client, p, stage, self.report)

    async def check_monetix(self, p: Payment) -> None:
        res = await self.result(p, purchase_result)
        if res is None:
            return
        self.report.outcomes[f"monetix {res.outcome.value}"] += 1
        v = self.report.violations
        try:
            view = await self.monetix.payment(p.key)
        except Exception:  # noqa: BLE001 - the sale never reached the platform
            view = None
        settled = [e for e in await self.monetix.ledger(payment_id=p.key) if e["kind"] == "SETTLED"]
        platform = view["status"] if view else None
        if view and view["requested_amount"] != p.amount_poisha:
            v.append(f"{p.key}: the sale asked Monetix for {view['requested_amount']}, but the "
                     f"merchant requested {p.amount_poisha}")
        if res.outcome.value == "SUCCESS":
            if platform not in PAID_STATUSES or len(settled) != 1:
                v.append(f"{p.key}: workflow SUCCESS, platform {platform}, settled {settled}")
            elif res.paid_poisha != settled[0]["amount"] or res.paid_poisha != view["paid_amount"]:
                v.append(f"{p.key}: paid {res.paid_poisha} but the platform settled "
                         f"{settled[0]['amount']}")
        elif res.outcome.value == "DECLINED":
            if platform not in (None, "decline", "error") or settled:
                v.append(f"{p.key}: workflow DECLINED, platform {platform}, settled {settled}")
        elif settled:
            v.append(f"{p.key}: workflow {res.outcome.value} but the platform settled {settled}")
        if view:
            sent = Counter(c["transaction_id"] for c in view["clarifications"] if c["transaction_id"])
            for trx, n in sent.items():
                if n > 1:
                    v.append(f"{p.key}: clarification sent {n} times for transaction {trx}")
            state = await purchase_state(self.client, p.key)
            # The purchase's own callbacks; refund callbacks are the refunds ledger's (and are
            # checked with the refunds).
            statuses = {c["status"] for c in view["callbacks"]
                        if c.get("operation_type", "sale") != "refund"}
            if state.callbacks_applied > len(statuses):
                v.append(f"{p.key}: {state.callbacks_applied} callbacks applied for "
                         f"{len(statuses)} distinct callbacks")

    async def check_history(self, workflow_id: str) -> None:
        try:
            history = await self.client.get_workflow_handle(workflow_id).fetch_history()
        except Exception:  # noqa: BLE001
            return
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                cause = event.workflow_task_failed_event_attributes.failure.message
                if "nondetermin" in cause.lower():
                    self.report.violations.append(f"{workflow_id}: non-determinism: {cause}")


class RefundInvariants(Invariants):
    """Refunds against the sandboxes' ledgers, for every payment (one that got no refund must have
    no REFUND line either): the sum of REFUND lines never exceeds what was captured / paid; each
    succeeded refund has exactly one REFUND line (and one refund at the provider), a refund id
    refused or failed has none; every refund is SUCCEEDED or FAILED within the budget; the refunds
    ledger's refunded amount is the sum of the REFUND lines; and each merchant request got the
    answer it had to get (duplicates the same refund, over-refunds and other amounts refused)."""

    async def check(self, payments: list[Payment], budget: float = 90.0) -> None:
        deadline = time.monotonic() + budget
        for p in payments:
            before = len(self.report.violations)
            if p.started:
                await self.check_refunds(p, deadline)
            plan = p.refund
            if plan is not None and plan.executed:
                await self.check_history(f"refunds-{p.kind}-{p.key}")
                if len(self.report.violations) == before:
                    self.report.survived[plan.kind] += 1

    async def check_refunds(self, p: Payment, deadline: float) -> None:
        v, plan = self.report.violations, p.refund
        if p.kind == "bkash":
            ledger = await self.bkash.ledger(invoice=p.key)
            captured = sum(e["amount_poisha"] for e in ledger if e["kind"] == "CAPTURE")
            lines = [(e["refund_trx_id"], e["amount_poisha"]) for e in ledger if e["kind"] == "REFUND"]
        else:
            ledger = await self.monetix.ledger(payment_id=p.key)
            captured = sum(e["amount"] for e in ledger if e["kind"] == "SETTLED")
            lines = [(e["transaction_id"], e["amount"]) for e in ledger if e["kind"] == "REFUND"]
        refunded = sum(amount for _, amount in lines)
        if refunded > captured:
            v.append(f"{p.key}: refunded {refunded} poisha at the provider, more than the "
                     f"{captured} captured / paid")
        if plan is None or not plan.executed:
            if lines:
                v.append(f"{p.key}: REFUND lines {lines} but no refund was requested")
            return
        state = await self._final_state(p, deadline)
        if state is None:
            return
        for step in plan.steps:
            self.report.refunds[f"{p.kind} {step.outcome.split(':')[0] or '?'}"] += 1
        self.report.refunds[f"{p.kind} REFUND lines"] += len(lines)
        if state.refunded_poisha != refunded:
            v.append(f"{p.key}: the refunds ledger says refunded {state.refunded_poisha}, the "
                     f"provider's REFUND lines {lines} add up to {refunded}")
        if state.captured_poisha != captured:
            v.append(f"{p.key}: the refunds ledger says captured {state.captured_poisha}, the "
                     f"provider's ledger {captured}")
        made = await self._made_at_provider(p)  # refund id → the provider's refunds under it
        trx_ids = Counter(trx for trx, _ in lines)
        for record in state.refunds:
            mine = made.get(record.refund_id, [])
            where = f"{p.key}: refund {record.refund_id} {record.stage.value}"
            if record.stage.value == "SUCCEEDED":
                if len(mine) != 1:
                    v.append(f"{where}, but the provider made {len(mine)} refunds under its id")
                    continue
                trx, amount = mine[0]
                if p.kind == "bkash" and record.provider_refund_id != trx:
                    v.append(f"{where} as refundTrxID {record.provider_refund_id}, bKash made {trx}")
                if trx_ids[trx] != 1:
                    v.append(f"{where}: {trx_ids[trx]} REFUND lines for its refund {trx}")
                if amount != record.amount_poisha:
                    v.append(f"{where} of {record.amount_poisha}, the provider refunded {amount}")
            elif mine:
                v.append(f"{where}, but the provider refunded it: {mine}")
        succeeded = {trx for r in state.refunds if r.stage.value == "SUCCEEDED"
                     for trx, _ in made.get(r.refund_id, [])}
        for trx, amount in lines:
            if trx not in succeeded:
                v.append(f"{p.key}: REFUND {trx} of {amount} is no succeeded refund of the ledger")
        self._check_answers(p, plan, state, made)

    def _check_answers(self, p: Payment, plan: RefundPlan, state: RefundsState,
                       made: dict[str, list]) -> None:
        v = self.report.violations
        records = {r.refund_id: r for r in state.refunds}
        for step in plan.steps:
            where = f"{p.key}: refund {step.refund_id} of {step.amount_poisha} ({plan.kind})"
            if step.outcome != step.expect:
                v.append(f"{where}: expected {step.expect}, got {step.outcome or 'nothing'} "
                         f"({step.detail})")
            elif step.refusal and step.refusal not in step.detail:
                v.append(f"{where}: refused, but not because {step.refusal!r}: {step.detail}")
            if len(step.provider_refund_ids) > 1:
                v.append(f"{where}: {step.copies} identical requests got different refunds "
                         f"{sorted(step.provider_refund_ids)}")
            record = records.get(step.refund_id)
            if step.expect != REFUSED and (record is None or record.amount_poisha
                                           != step.amount_poisha):
                v.append(f"{where}: the refunds ledger has {record}")
        for refund_id in plan.refused_ids:
            if refund_id in records or made.get(refund_id):
                v.append(f"{p.key}: refused refund {refund_id} is in the ledger "
                         f"({records.get(refund_id)}) or at the provider ({made.get(refund_id)})")

    async def _final_state(self, p: Payment, deadline: float) -> RefundsState | None:
        """The refunds ledger once every refund in it is SUCCEEDED or FAILED (or the budget is out)."""
        provider = Provider.BKASH if p.kind == "bkash" else Provider.MONETIX
        state, problem = None, ""
        while True:
            try:
                state = await asyncio.wait_for(refunds(self.client, provider, p.key), 20)
                pending = [r.refund_id for r in state.refunds if not r.stage.is_final]
                if not pending:
                    return state
                problem = f"refunds {pending} not final"
            except PaymentError as err:
                problem = str(err)
            except Exception as exc:  # noqa: BLE001 - worker restarting
                problem = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                notes = "; ".join(p.refund.notes) if p.refund else ""
                self.report.violations.append(f"refunds-{p.kind}-{p.key}: {problem} within the "
                                              f"run's budget ({notes})")
                return None
            await asyncio.sleep(1)

    async def _made_at_provider(self, p: Payment) -> dict[str, list[tuple[str, int]]]:
        """Refund id → (provider refund id, amount) of each refund the provider made under it:
        bKash by the reason the run sends ("chaos <refund id>"), Monetix by merchant_refund_id."""
        out: dict[str, list[tuple[str, int]]] = defaultdict(list)
        if p.kind == "bkash":
            for r in await self.bkash.refunds(invoice=p.key):
                out[r["reason"].removeprefix("chaos ")].append((r["refund_trx_id"],
                                                                r["amount_poisha"]))
        else:
            for r in await self.monetix.refunds(p.key):
                if r["status"] == "success":
                    out[r["merchant_refund_id"]].append((r["provider_refund_id"], r["amount"]))
        return out

# A paid purchase stays paid when refunds follow: the platform then reports it "partially
# refunded" / "refunded" (the purchase's SUCCESS is unchanged; refunds are checked on their own).
PAID_STATUSES = ("success", "partially refunded", "refunded")


def check_logs_for_secrets(logs: Path, secrets: dict[str, str], report: Report) -> None:
    for path in logs.glob("*.log"):
        text = path.read_text(errors="replace")
        for name, value in secrets.items():
            if value in text:
                report.violations.append(f"the {name} appears in {path.name}")


def approval_violations(key: str, payments: list[dict], authorizations: int, stage: str,
                        detail: str) -> list[str]:
    """A customer who approved on bKash's page ends with an authorization, captured or voided,
    unless bKash itself declined. ``payments``: the sandbox's records of the invoice's payments
    (``page_outcome`` "success": the customer finished the page, wallet, OTP and PIN; ``status``
    "Failed" with a ``failure_code``: bKash declined the execute, e.g. insufficient balance)."""
    approved = [x for x in payments if x["page_outcome"] == "success"]
    if not approved:
        return []
    declined = [x for x in approved if x["status"] == "Failed" and x["failure_code"]]
    if declined:
        if stage != "DECLINED":
            return [f"{key}: bKash declined {declined[0]['payment_id']} "
                    f"({declined[0]['failure_code']}), but the payment ended {stage}"]
        return []
    if authorizations and stage in ("CAPTURED", "VOIDED"):
        return []
    ids = ", ".join(f"{x['payment_id']} ({x['status']})" for x in approved)
    return [f"{key}: the customer approved {ids} on bKash's page, but the payment ended {stage} "
            f"with {authorizations} authorizations: {detail}"]


def bkash_amount_violations(p: Payment, ledger: list[dict]) -> list[str]:
    """Every movement of the invoice's money at bKash is of the amount the merchant asked for: this
    lifecycle authorizes the invoice amount and captures, voids or lets expire all of it."""
    return [f"{p.key}/{e['payment_id']}: {e['kind']} of {e['amount']} BDT, but the merchant "
            f"requested {format_bdt(p.amount_poisha)} BDT"
            for e in ledger if e["kind"] in ("AUTHORIZE", "CAPTURE", "VOID", "EXPIRE")
            and e["amount_poisha"] != p.amount_poisha]
