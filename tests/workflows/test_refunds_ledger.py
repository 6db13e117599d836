"""The refunds workflow's ledger rules, on the time-skipping server with stand-in activities (a unit
test of the workflow: the provider paths are proven end to end in tests/e2e/test_refunds.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from contracts.common import Provider
from contracts.refunds import (
    WORKFLOW,
    BkashRefundCall,
    LedgerStage,
    ProviderRefundResult,
    RefundablePayment,
    RefundActivity,
    RefundErrorKind,
    RefundOp,
    RefundRecord,
    RefundRequest,
    RefundsInput,
    RefundsState,
    RefundStage,
)
from workflows.refunds import PaymentRefunds


class FakeBkash:
    def __init__(self, captured: int = 100000, refundable: bool = True) -> None:
        self.captured, self.refundable = captured, refundable
        self.calls: list[BkashRefundCall] = []

    @activity.defn(name=RefundActivity.LOAD_PAYMENT)
    async def load(self, inp: RefundsInput) -> RefundablePayment:
        return RefundablePayment(provider=inp.provider, payment_workflow_id=inp.payment_workflow_id,
                                 refundable=self.refundable, captured_poisha=self.captured,
                                 why_not="" if self.refundable else "payment ended VOIDED",
                                 payment_id="TR0011x", trx_id="TRX1",
                                 settled_at=activity.info().current_attempt_scheduled_time)

    @activity.defn(name=RefundActivity.BKASH_REFUND)
    async def refund(self, call: BkashRefundCall) -> ProviderRefundResult:
        self.calls.append(call)
        if call.reason == "bkash says over limit":
            raise ApplicationError("bKash 2072 Refund amount not valid",
                                   type=RefundErrorKind.OVER_LIMIT, non_retryable=True)
        return ProviderRefundResult(status=RefundStage.SUCCEEDED,
                                    provider_refund_id=f"RFD{len(self.calls)}",
                                    amount_poisha=call.amount_poisha)


@pytest.fixture
async def ledger(ts_env):
    fake = FakeBkash()
    queue = f"refunds-{uuid.uuid4().hex[:6]}"
    invoice = f"INV-{uuid.uuid4().hex[:8]}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[PaymentRefunds],
                      activities=[fake.load, fake.refund]):
        yield ts_env.client, queue, fake, invoice
    # A ledger left open (15 days) without its worker would hold up time skipping for later tests.
    handle = ts_env.client.get_workflow_handle(f"refunds-bkash-{invoice}")
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("test over")


async def ask(client, queue: str, invoice: str, refund_id: str, amount: int,
              reason: str = "customer returned the item") -> RefundRecord:
    req = RefundRequest(provider=Provider.BKASH, payment_key=invoice, refund_id=refund_id,
                        amount_poisha=amount, reason=reason, sku="room-101")
    op = WithStartWorkflowOperation(
        WORKFLOW, RefundsInput(provider=Provider.BKASH, payment_key=invoice), id=req.workflow_id,
        task_queue=queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    record = await client.execute_update_with_start_workflow(
        RefundOp.REQUEST_REFUND, req, start_workflow_operation=op,
        id=f"refund-{refund_id}-{amount}", result_type=RefundRecord)
    if record.stage.is_final:
        return record
    return await client.get_workflow_handle(req.workflow_id).execute_update(
        RefundOp.AWAIT_REFUND, refund_id, id=f"await-{refund_id}", result_type=RefundRecord)


async def ledger_state(client, invoice: str) -> RefundsState:
    return await client.get_workflow_handle(f"refunds-bkash-{invoice}").query(
        RefundOp.STATE, result_type=RefundsState)


async def test_partial_and_multiple_refunds_add_up_and_close_when_fully_refunded(ledger):
    client, queue, fake, invoice = ledger
    for refund_id, amount in (("r1", 30000), ("r2", 20000)):
        assert (await ask(client, queue, invoice, refund_id, amount)).stage is RefundStage.SUCCEEDED
    state = await ledger_state(client, invoice)
    assert (state.refunded_poisha, state.refundable_poisha) == (50000, 50000)
    assert state.stage is LedgerStage.REFUNDABLE
    await ask(client, queue, invoice, "r3", 50000)
    result = await client.get_workflow_handle(f"refunds-bkash-{invoice}",
                                              result_type=RefundsState).result()
    assert result.stage is LedgerStage.FULLY_REFUNDED and result.refunded_poisha == 100000
    assert [c.amount_poisha for c in fake.calls] == [30000, 20000, 50000]
    # The second refund told the activity which refundTrxIDs are already in the ledger.
    assert fake.calls[2].known_refund_trx_ids == ["RFD1", "RFD2"]


async def test_an_over_refund_is_refused_before_any_provider_call(ledger):
    client, queue, fake, invoice = ledger
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await ask(client, queue, invoice, "too-much", 120000)
    assert "more than the 1000.00 BDT still refundable" in str(info.value.cause)
    assert fake.calls == []


async def test_the_same_refund_id_is_the_same_refund_and_another_amount_is_refused(ledger):
    client, queue, fake, invoice = ledger
    first = await ask(client, queue, invoice, "r1", 30000)
    # Not the same update (another update id), yet the same refund: no second provider call.
    handle = client.get_workflow_handle(f"refunds-bkash-{invoice}")
    again = await handle.execute_update(
        RefundOp.REQUEST_REFUND, RefundRequest(provider=Provider.BKASH, payment_key=invoice,
                                               refund_id="r1", amount_poisha=30000,
                                               reason="a retry", sku="room-101"),
        id="another-update-id", result_type=RefundRecord)
    assert again.provider_refund_id == first.provider_refund_id and len(fake.calls) == 1
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await ask(client, queue, invoice, "r1", 40000)
    assert "already a refund of 300.00 BDT" in str(info.value.cause)
    assert len(fake.calls) == 1


async def test_concurrent_refunds_never_exceed_the_captured_amount(ledger):
    client, queue, fake, invoice = ledger
    await ask(client, queue, invoice, "first", 10000)  # the ledger exists
    outcomes = await asyncio.gather(*(ask(client, queue, invoice, f"c{i}", 30000)
                                      for i in range(5)), return_exceptions=True)
    succeeded = [o for o in outcomes if isinstance(o, RefundRecord)]
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(succeeded) == 3 and len(refused) == 2
    assert sum(c.amount_poisha for c in fake.calls) == 100000


async def test_a_provider_refusal_fails_the_refund_and_frees_the_amount(ledger):
    client, queue, fake, invoice = ledger
    record = await ask(client, queue, invoice, "r1", 30000, reason="bkash says over limit")
    assert record.stage is RefundStage.FAILED and "2072" in record.detail
    state = await ledger_state(client, invoice)
    assert (state.refunded_poisha, state.pending_poisha, state.refundable_poisha) == (0, 0, 100000)


async def test_the_refund_window_closes_after_15_days(ts_env, ledger):
    client, queue, fake, invoice = ledger
    await ask(client, queue, invoice, "early", 10000)
    await ts_env.sleep(timedelta(days=15, hours=1))
    result = await client.get_workflow_handle(f"refunds-bkash-{invoice}",
                                              result_type=RefundsState).result()
    assert result.stage is LedgerStage.WINDOW_CLOSED and result.refunded_poisha == 10000
    assert len(fake.calls) == 1


async def test_a_payment_that_was_not_captured_cannot_be_refunded(ts_env):
    fake = FakeBkash(refundable=False)
    queue = f"refunds-{uuid.uuid4().hex[:6]}"
    invoice = f"INV-{uuid.uuid4().hex[:8]}"
    async with Worker(ts_env.client, task_queue=queue, workflows=[PaymentRefunds],
                      activities=[fake.load, fake.refund]):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await ask(ts_env.client, queue, invoice, "r1", 100)
        assert "payment ended VOIDED" in str(info.value.cause)
        result = await ts_env.client.get_workflow_handle(
            f"refunds-bkash-{invoice}", result_type=RefundsState).result()
    assert result.stage is LedgerStage.NOT_REFUNDABLE and fake.calls == []


