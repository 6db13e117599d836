"""The customer's returns as the workflow handles them (workflows/bkash_returns.py), with stand-in
bKash activities so each race is staged exactly: returns joining the one being handled, a return
that arrives while a forged one is being answered "still waiting", the spacing of executes, and
the advisory and strict signature rules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from contracts.bkash import (
    BkashActivity,
    BkashErrorKind,
    BkashOp,
    BkashPaymentRequest,
    BkashStage,
    BrowserReturn,
    BrowserReturnStatus,
    CreatedPaymentInfo,
    CreatePaymentInput,
    PaymentRef,
    ProviderPaymentStatus,
    ReturnOutcome,
    SignatureRule,
)
from merchant_client import payment_state, send_customer_return, start_payment
from workflows.bkash import BkashAuthCapture
from workflows.bkash_returns import MAX_JOINED_RETURNS, RETURN_EXECUTE_SPACING

PAYMENT_ID = "TR0011standIn1700000000000"
# The spacing counts from the workflow task that started the first execute; its activity is
# scheduled when that task completes, a few milliseconds later.
SPACED = RETURN_EXECUTE_SPACING - timedelta(milliseconds=300)
SIGNATURE = "createSig1"


class StandInBkash:
    """Executes Authorized once ``approved`` is set (before: 2060, bKash has not seen the
    approval); ``hold`` keeps an execute in flight until released."""

    def __init__(self) -> None:
        self.approved = False
        self.hold: asyncio.Event | None = None
        self.executes: list[datetime] = []
        self.queries = 0

    @activity.defn(name=BkashActivity.CREATE_PAYMENT)
    async def create(self, inp: CreatePaymentInput) -> CreatedPaymentInfo:
        return CreatedPaymentInfo(payment_id=PAYMENT_ID, bkash_url="https://bkash.example/pay",
                                  redirect_signature=SIGNATURE)

    @activity.defn(name=BkashActivity.EXECUTE_PAYMENT)
    async def execute(self, ref: PaymentRef) -> ProviderPaymentStatus:
        self.executes.append(activity.info().scheduled_time)
        approved = self.approved  # what bKash knew when the execute reached it
        if self.hold is not None:
            await self.hold.wait()
        if not approved:
            raise ApplicationError("2060 payment not approved", type=BkashErrorKind.INVALID_STATE)
        return ProviderPaymentStatus(payment_id=ref.payment_id, transaction_status="Authorized",
                                     trx_id="TRX1")

    @activity.defn(name=BkashActivity.QUERY_PAYMENT)
    async def query(self, ref: PaymentRef) -> ProviderPaymentStatus:
        self.queries += 1
        return ProviderPaymentStatus(payment_id=ref.payment_id, transaction_status="Initiated")

    @activity.defn(name=BkashActivity.VOID_PAYMENT)
    async def void(self, ref: PaymentRef) -> ProviderPaymentStatus:
        return ProviderPaymentStatus(payment_id=ref.payment_id, transaction_status="Cancelled")


class Payment:
    def __init__(self, env, bkash: StandInBkash, queue: str) -> None:
        self.client, self.bkash = env.client, bkash
        self.req = BkashPaymentRequest(invoice_number=f"RET-{uuid.uuid4().hex[:8]}",
                                       amount_poisha=50000,
                                       callback_base_url="https://shop.example")
        self.queue = queue

    async def start(self) -> None:
        await start_payment(self.client, self.req, task_queue=self.queue)

    async def back(self, status: str = "success", signature: str | None = SIGNATURE,
                   rule: SignatureRule = SignatureRule.ADVISORY) -> ReturnOutcome:
        return await send_customer_return(
            self.client, self.req.workflow_id,
            BrowserReturn(payment_id=PAYMENT_ID, status=BrowserReturnStatus(status),
                          signature=signature, signature_rule=rule),
            update_id=f"return-{uuid.uuid4().hex}")

    async def stage(self) -> BkashStage:
        return (await payment_state(self.client, self.req.invoice_number)).stage

    async def end(self) -> None:
        handle = self.client.get_workflow_handle(self.req.workflow_id)
        await handle.cancel()
        await handle.result()


@pytest.fixture
async def payment(dev_env):
    bkash = StandInBkash()
    queue = f"returns-{uuid.uuid4().hex[:6]}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[BkashAuthCapture],
                      activities=[bkash.create, bkash.execute, bkash.query, bkash.void]):
        p = Payment(dev_env, bkash, queue)
        await p.start()
        yield p
        if bkash.hold is not None:
            bkash.hold.set()
        await p.end()


async def refused(update, reason: str) -> None:
    """The workflow's validator refused the update (nothing was written to its history)."""
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await update
    assert reason in str(info.value.cause)


async def until(condition, timeout: float = 10) -> None:
    async def poll():
        while not condition():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(poll(), timeout)


async def test_returns_arriving_while_one_is_handled_join_it_and_share_its_execute(payment):
    payment.bkash.approved, payment.bkash.hold = True, asyncio.Event()
    first = asyncio.create_task(payment.back())
    await until(lambda: payment.bkash.executes)
    joined = [asyncio.create_task(payment.back()) for _ in range(MAX_JOINED_RETURNS)]
    await asyncio.sleep(0.5)  # let them be accepted
    await refused(payment.back(), "already handling")  # over the bound: nothing written
    payment.bkash.hold.set()
    outcomes = await asyncio.gather(first, *joined)
    assert {o.stage for o in outcomes} == {BkashStage.AUTHORIZED}
    assert {o.amount_poisha for o in outcomes} == {50000}
    assert len(payment.bkash.executes) == 1


async def test_the_real_return_racing_a_forged_one_gets_its_own_execute(payment):
    payment.bkash.hold = asyncio.Event()
    forged = asyncio.create_task(payment.back())
    await until(lambda: payment.bkash.executes)  # the forged return's execute reached bKash
    payment.bkash.approved = True  # meanwhile the customer approves on bKash's page ...
    real = asyncio.create_task(payment.back())  # ... and comes back
    await asyncio.sleep(0.5)
    payment.bkash.hold.set()
    assert (await forged).stage is BkashStage.AWAITING_APPROVAL  # bKash: not approved (yet)
    assert (await real).stage is BkashStage.AUTHORIZED
    first, second = payment.bkash.executes
    assert second - first >= SPACED


async def test_a_return_after_a_still_waiting_answer_executes_again_after_the_spacing(payment):
    assert (await payment.back()).stage is BkashStage.AWAITING_APPROVAL
    payment.bkash.approved = True
    assert (await payment.back()).stage is BkashStage.AUTHORIZED
    first, second = payment.bkash.executes
    assert second - first >= SPACED


async def test_a_success_with_another_signature_executes_unless_the_rule_is_strict(payment):
    payment.bkash.approved = True
    await refused(payment.back(signature="otherSig99", rule=SignatureRule.STRICT), "strict rule")
    assert payment.bkash.executes == []
    outcome = await payment.back(signature="otherSig99")
    assert outcome.stage is BkashStage.AUTHORIZED and len(payment.bkash.executes) == 1


async def test_a_cancel_with_another_signature_is_recorded_and_ends_nothing(payment):
    await refused(payment.back("cancel", signature=None, rule=SignatureRule.STRICT), "strict rule")
    outcome = await payment.back("cancel", signature=None)
    assert outcome.stage is BkashStage.AWAITING_APPROVAL
    assert (await payment.back("failure", signature="otherSig99")).stage \
        is BkashStage.AWAITING_APPROVAL
    state = await payment_state(payment.client, payment.req.invoice_number)
    assert state.stage is BkashStage.AWAITING_APPROVAL
    assert sum("nothing ended" in e.event for e in state.timeline) == 2
    assert (payment.bkash.queries, payment.bkash.executes) == (0, [])
    # With the create answer's signature a cancel is confirmed by query, as before.
    assert (await payment.back("cancel")).stage is BkashStage.CANCELLED
    assert payment.bkash.queries == 1


async def test_a_return_from_an_endpoint_older_than_the_rule_is_advisory(payment):
    payment.bkash.approved = True
    handle = payment.client.get_workflow_handle(payment.req.workflow_id)
    outcome = await handle.execute_update(
        BkashOp.CUSTOMER_RETURNED,
        {"payment_id": PAYMENT_ID, "status": "success", "signature": "otherSig99"},
        id="return-old-endpoint", result_type=ReturnOutcome)
    assert outcome.stage is BkashStage.AUTHORIZED


def test_the_new_return_paths_have_saved_histories():
    from tests.workflows.test_replay import HISTORIES

    names = {p.stem for p in HISTORIES}
    for path in ("bkash__test_with_another_redirect_signature_the_customers_return_authorizes",
                 "bkash__test_with_another_redirect_signature_a_cancel_is_recorded",
                 "bkash__test_a_forged_cancel_does_not_cancel",
                 "bkash__test_a_forged_early_success_then_the_real_return",
                 "bkash__test_a_stream_of_forged_successes"):
        assert any(n.startswith(path) for n in names), f"no saved history for the {path} path"
