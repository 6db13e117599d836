"""The merchant client as merchant code uses it: what a retried or mistaken start does, what the
Monetix state shows, and what the Web UI's current details say (issue 8 §6)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError

from contracts.bkash import BkashStage
from contracts.monetix import MonetixStage
from merchant_client import (
    PaymentError,
    list_payments,
    payment_state,
    start_gate_purchase,
    start_payment,
    submit_transaction_id,
)
from tests.support.bkash import pay, request, result, wait_for_stage
from tests.support.monetix import gate_request, purchase_result, purchase_state, start_gate


async def _accepted_updates(stack, workflow_id: str, name: str) -> int:
    history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
               and e.workflow_execution_update_accepted_event_attributes.accepted_request.input
               .name == name)


async def test_retried_start_is_one_update_not_one_per_retry(stack):
    req = request(stack)
    answers = await asyncio.gather(*(start_payment(stack.client, req,
                                                   task_queue=stack.settings.task_queue)
                                     for _ in range(6)))
    assert len({a.payment_id for a in answers}) == 1
    assert await _accepted_updates(stack, req.workflow_id, "approval_url") == 1
    assert len(await stack.sandbox.payments(invoice=req.invoice_number)) == 1
    await stack.customer.cancel(answers[0].bkash_url)
    await result(stack, req)


async def test_same_invoice_with_a_different_amount_is_refused(stack):
    req, url = await pay(stack)
    other = req.model_copy(update={"amount_poisha": req.amount_poisha + 100})
    with pytest.raises(PaymentError, match="already has a running payment of 500.00 BDT"):
        await start_payment(stack.client, other, task_queue=stack.settings.task_queue)
    assert len(await stack.sandbox.payments(invoice=req.invoice_number)) == 1
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)


async def test_same_monetix_payment_id_with_a_different_amount_is_refused(stack):
    req, shown = await start_gate(stack)
    other = gate_request(stack, amount=200000, payment_id=req.sale.payment_id)
    with pytest.raises(PaymentError, match="already has a running payment of 1000.00 BDT"):
        await start_gate_purchase(stack.client, other, task_queue=stack.settings.task_queue)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    assert (await purchase_result(stack, req)).paid_poisha == 100000


async def test_a_finished_invoice_is_refused_on_a_retried_start_too(stack):
    req, url = await pay(stack)
    await stack.customer.cancel(url.bkash_url)
    await result(stack, req)
    # The very same request (so the same update id) after the payment ended: no old bkashURL.
    with pytest.raises(PaymentError, match="already paid and ended CANCELLED"):
        await start_payment(stack.client, req, task_queue=stack.settings.task_queue)


async def test_monetix_state_and_reply_show_the_transaction_id(stack):
    req, _ = await start_gate(stack)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    reply = await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    assert reply.stage is MonetixStage.CLARIFYING
    assert reply.transaction_id == trx.upper() and trx.upper() in reply.detail
    assert (await purchase_result(stack, req)).outcome is MonetixStage.SUCCESS
    state = await purchase_state(stack, req)
    assert state.transaction_id == trx.upper() and state.paid_poisha == 100000


async def _current_details(stack, workflow_id: str) -> str:
    meta = await stack.client.get_workflow_handle(workflow_id).query("__temporal_workflow_metadata")
    return meta.current_details if hasattr(meta, "current_details") else meta["currentDetails"]


async def test_authorized_payment_details_show_when_it_will_be_voided(stack):
    req, url = await pay(stack)
    await stack.customer.approve(url.bkash_url)
    await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
    details = await _current_details(stack, req.workflow_id)
    assert "**AUTHORIZED**" in details and "held until" in details and "voided then" in details
    from merchant_client import report_service_failed
    await report_service_failed(stack.client, req.invoice_number, "test over")
    await result(stack, req)


async def test_a_different_paid_amount_is_in_the_monetix_headline(stack):
    req, _ = await start_gate(stack)
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id, amount=120000)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    res = await purchase_result(stack, req)
    assert res.paid_poisha == 120000 and res.amount_changed
    details = await _current_details(stack, req.workflow_id)
    assert "paid 1200.00 BDT (requested 1000.00)" in details.splitlines()[0]


async def test_a_payment_id_with_markup_is_refused_like_an_invoice(stack):
    with pytest.raises(PaymentError, match="must not contain <"):
        await submit_transaction_id(stack.client, "P<1", "8KJ1056KR3")


async def test_a_namespace_without_the_search_attributes_says_how_to_register_them(stack, dev_env):
    namespace = f"bare-{uuid.uuid4().hex[:8]}"
    await dev_env.client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period={"seconds": 86400}))
    client = await Client.connect(dev_env.client.service_client.config.target_host,
                                  namespace=namespace,
                                  data_converter=dev_env.client.data_converter)
    for _ in range(50):  # a new namespace takes a moment to be usable
        try:
            await client.count_workflows()
            break
        except Exception:  # noqa: BLE001
            await asyncio.sleep(0.2)
    with pytest.raises(PaymentError) as info:
        await start_payment(client, request(stack), task_queue=stack.settings.task_queue)
    assert "temporal operator search-attribute create" in str(info.value)
    assert "--name PaymentStage" in str(info.value)
    with pytest.raises(PaymentError, match="search attribute"):
        await list_payments(client)


async def test_a_missing_payment_is_a_clear_error(stack):
    with pytest.raises(PaymentError, match="no bKash payment for invoice NOPE-"):
        await payment_state(stack.client, f"NOPE-{uuid.uuid4().hex[:6]}")


async def test_a_start_cancelled_by_a_timeout_leaves_no_unretrieved_future(stack, dev_env):
    import gc

    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: reported.append(ctx))
    try:
        req = request(stack)
        # No worker polls this queue: the start is accepted, its update never answered.
        with pytest.raises((asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError)):
            await asyncio.wait_for(start_payment(stack.client, req, task_queue="nobody-polls"),
                                   timeout=1)
        await stack.client.get_workflow_handle(req.workflow_id).terminate("test over")
        await asyncio.sleep(0.5)
        gc.collect()
        await asyncio.sleep(0.1)
    finally:
        loop.set_exception_handler(old)
    assert not [c for c in reported if "never retrieved" in str(c.get("message", ""))]
