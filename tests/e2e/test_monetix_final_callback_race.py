"""Two different final callbacks for one open purchase, arriving at the endpoint at the same time:
the first one the workflow applies is the purchase's final answer; the other is acknowledged (so
Monetix stops re-sending) and ignored, never overwriting it.

The purchase is held open by the sandbox delaying its answer to the clarification (the transaction
ID), so both callbacks reach the running workflow; the sandbox's own final callback is kept back
("lose") and sent by the test, signed as Monetix signed it, together with a contradicting decline.
"""

from __future__ import annotations

import asyncio
import copy
import json

import httpx

from merchant_client import submit_transaction_id
from contracts.monetix import MonetixStage
from providers.monetix_signing import sign
from tests.conftest import MONETIX
from tests.support.monetix import purchase_result, purchase_state, start_gate
from workflows import search_attributes as sa

# Longer than the two callbacks take, shorter than the Gate client's 3 s timeout.
CLARIFICATION_ANSWER_DELAY = 2.0


def contradicting_decline(success: dict) -> dict:
    body = copy.deepcopy({k: v for k, v in success.items() if k != "signature"})
    body["payment"]["status"] = "decline"
    body["operation"].update(status="decline", code="20105",
                             message="Insufficient funds on customer account")
    body["signature"] = sign(body, MONETIX.secret_key)
    return body


def final_applied(state) -> list[str]:
    """The final statuses the workflow applied from callbacks, in order."""
    return [status for e in state.timeline for status in ("success", "decline")
            if e.event.startswith(f"callback: payment '{status}'")]


async def test_two_different_final_callbacks_at_once_first_applied_wins_other_is_ignored(stack):
    req, _ = await start_gate(stack)
    pid = req.sale.payment_id
    await stack.monetix.add_fault("callback", "lose", match={"payment_id": pid, "status": "success"})
    await stack.monetix.add_fault("clarification", "delay_after_commit",
                                  delay_seconds=CLARIFICATION_ANSWER_DELAY, match={"payment_id": pid})
    trx = await stack.monetix_customer.pay_in_bkash(pid)
    await submit_transaction_id(stack.client, pid, trx)
    success = (await stack.monetix.wait_for_callback(pid, "success", delivered=False))["body"]
    bodies = {"success": success, "decline": contradicting_decline(success)}

    url = f"{stack.endpoint_url}/monetix/callback"
    async with httpx.AsyncClient(timeout=10) as http:
        answers = await asyncio.gather(*(
            http.post(url, content=json.dumps(body), headers={"Content-Type": "application/json"})
            for body in bodies.values()))
    answered = {status: (r.status_code, r.text) for status, r in zip(bodies, answers)}

    res = await purchase_result(stack, req)
    state = await purchase_state(stack, req)
    applied = final_applied(state)
    assert len(applied) == 1, f"final callbacks applied: {applied}; endpoint answered {answered}"
    winner = applied[0]
    loser = "decline" if winner == "success" else "success"
    assert state.callbacks_ignored == 1
    assert any(e.event.startswith(f"callback ignored: '{loser}'") for e in state.timeline)
    # Both acknowledged with 200 (Monetix stops re-sending); only the first was applied.
    assert answered[winner] == (200, "OK")
    assert answered[loser] == (200, "OK (already processed)")

    expected = MonetixStage.SUCCESS if winner == "success" else MonetixStage.DECLINED
    assert res.outcome is expected and state.stage is expected
    desc = await stack.client.get_workflow_handle(req.workflow_id).describe()
    assert desc.typed_search_attributes.get(sa.PAYMENT_STAGE) == expected.value
    if winner == "success":
        # What Monetix settled, to the poisha.
        settled = [e["amount"] for e in await stack.monetix.ledger(payment_id=pid)
                   if e["kind"] == "SETTLED"]
        assert res.paid_poisha == req.sale.amount_poisha and settled == [res.paid_poisha]
        assert res.provider_payment_id == trx and res.decline_code is None
    else:
        assert res.decline_code == "20105" and res.paid_poisha is None
