"""A Monetix callback is routed by (project_id, payment id), issue 9 §5: two projects of one merchant
may use the same payment_id, and workflow ids (``monetix-<payment_id>``, unchanged for purchases in
flight) do not name the project. An endpoint serving both projects must never hand project B's
callback — validly signed with B's key — to project A's purchase of the same payment_id.

Real dev server, worker and sandbox; the two-project endpoint is the app itself (ASGI), so the
callback goes through the whole endpoint and the workflow's update validator."""

from __future__ import annotations

import httpx
import pytest_asyncio

from contracts.monetix import MonetixStage
from endpoint.app import create_app
from merchant_client import submit_transaction_id
from providers.monetix_signing import sign
from tests.conftest import MONETIX
from tests.support.monetix import purchase_result, purchase_state, start_gate

PROJECT_A = MONETIX.project_id
[(PROJECT_B, KEY_B)] = MONETIX.other_projects.items()


@pytest_asyncio.fixture
async def two_project_endpoint(stack):
    app = create_app(stack.client, monetix_projects={PROJECT_A: MONETIX.secret_key, PROJECT_B: KEY_B})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://merchant",
                                 timeout=30) as http:
        yield http


def project_callback(project: int, key: str, payment_id: str, status: str, operation_id: int) -> dict:
    body = {"project_id": project,
            "payment": {"id": payment_id, "type": "purchase", "status": status, "method": "Bkash",
                        "sum": {"amount": 100000, "currency": "BDT"}},
            "operation": {"id": operation_id, "type": "sale", "status": status, "code": "0",
                          "message": "Success"}}
    return {**body, "signature": sign(body, key)}


async def history_length(stack, workflow_id: str) -> int:
    return len((await stack.client.get_workflow_handle(workflow_id).fetch_history()).events)


async def _assert_b_is_refused(stack, http, req) -> None:
    before = await history_length(stack, req.workflow_id)
    foreign = project_callback(PROJECT_B, KEY_B, req.sale.payment_id, "success", 990001)
    response = await http.post("/monetix/callback", json=foreign)
    assert response.status_code == 409, response.text
    assert f"project {PROJECT_B}" in response.text
    # A rejected update writes nothing: project A's purchase never saw B's money.
    assert await history_length(stack, req.workflow_id) == before
    state = await purchase_state(stack, req)
    assert state.stage is MonetixStage.AWAITING_TRANSACTION_ID and state.callbacks_applied == 1


async def _pay_and_check(stack, req) -> None:
    trx = await stack.monetix_customer.pay_in_bkash(req.sale.payment_id)
    await submit_transaction_id(stack.client, req.sale.payment_id, trx)
    result = await purchase_result(stack, req)
    assert result.outcome is MonetixStage.SUCCESS and result.paid_poisha == req.sale.amount_poisha


async def test_project_bs_callback_never_reaches_project_as_purchase_of_the_same_payment_id(
        stack, two_project_endpoint):
    req, shown = await start_gate(stack, project_id=PROJECT_A)
    assert shown.stage is MonetixStage.AWAITING_TRANSACTION_ID
    await _assert_b_is_refused(stack, two_project_endpoint, req)
    # Project A's own callbacks still reach it through the same endpoint.
    own = project_callback(PROJECT_A, MONETIX.secret_key, req.sale.payment_id, "awaiting customer",
                           990002)
    response = await two_project_endpoint.post("/monetix/callback", json=own)
    assert response.status_code == 200, response.text
    assert (await purchase_state(stack, req)).callbacks_applied == 2
    await _pay_and_check(stack, req)


async def test_a_purchase_that_does_not_name_its_project_takes_no_callback_naming_one(
        stack, two_project_endpoint):
    # Started without project_id (as every purchase before it existed): the endpoint serving two
    # projects cannot tell whose it is, so neither project's callback is forced on it; status
    # polling, asked of the worker's own project, still decides it.
    req, _ = await start_gate(stack)
    await _assert_b_is_refused(stack, two_project_endpoint, req)
    await _pay_and_check(stack, req)
