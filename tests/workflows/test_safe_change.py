"""The documented procedure for changing a workflow while payments are in flight (README, "Changing
a workflow safely"): the change goes behind ``workflow.patched``; saved histories of the old code
still replay, the same change without the patch does not, and a payment started on the old code
finishes on the new worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from tests.conftest import DATA_CONVERTER  # the project's one converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from merchant_client import report_service_delivered
from tests.workflows.patched_bkash import PatchedBkashAuthCapture, UnpatchedBkashAuthCapture
from tests.support.bkash import kinds, pay, wait_for_stage
from contracts.bkash import BkashStage

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
CAPTURED = HISTORIES / "bkash__test_approved_then_delivered_is_captured_exactly_once.json"


def _history() -> WorkflowHistory:
    return WorkflowHistory.from_json("captured", CAPTURED.read_text())


async def test_a_patched_change_replays_the_histories_of_payments_in_flight():
    await Replayer(workflows=[PatchedBkashAuthCapture],
                   data_converter=DATA_CONVERTER).replay_workflow(_history())


async def test_the_same_change_without_a_patch_breaks_payments_in_flight():
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[UnpatchedBkashAuthCapture],
                       data_converter=DATA_CONVERTER).replay_workflow(_history())


async def test_a_payment_authorized_on_the_old_code_is_captured_by_the_new_worker(
        dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    from temporalio.worker import Worker

    from activities.notifications import NotificationPublisher

    from tests.conftest import running_stack

    async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities) as stack:  # the old code's worker
        req, url = await pay(stack)
        await stack.customer.approve(url.bkash_url)
        await wait_for_stage(stack, req, BkashStage.AUTHORIZED)
        task_queue = stack.settings.task_queue
    # Deploy: the old worker is gone, the patched code polls the same task queue.
    publish = NotificationPublisher(dev_env.client).publish_notification  # as build_worker adds
    async with Worker(dev_env.client, task_queue=task_queue,
                      workflows=[PatchedBkashAuthCapture],
                      activities=[*shared_activities, publish]):
        await report_service_delivered(dev_env.client, req.invoice_number)
        res = await dev_env.client.get_workflow_handle_for(
            PatchedBkashAuthCapture.run, req.workflow_id).result()
    assert res.stage is BkashStage.CAPTURED
    ledger = await stack.sandbox.ledger(payment_id=url.payment_id)
    assert kinds(ledger) == ["AUTHORIZE", "CAPTURE"]
