"""The saved histories are ciphertext that later sessions can still replay: recording
(RECORD_HISTORIES=1, `make histories`) writes with the committed test-only key
tests/histories/test-payload-keys, never with the session's random one. This short capture is
saved as bkash__test_a_capture_recorded_encrypted.json; tests/workflows/test_replay.py replays it
with that key and shows it does not decode without it."""

from __future__ import annotations

import os

from contracts.bkash import BkashStage
from merchant_client.encryption import ENCODING, KEY_ID_METADATA, load_keys
from tests.conftest import HISTORY_KEYS
from tests.support.bkash import kinds, pay_and_capture


async def test_a_capture_recorded_encrypted(stack):
    req, url, res = await pay_and_capture(stack)  # saved here when recording
    assert res.stage is BkashStage.CAPTURED
    assert kinds(await stack.sandbox.ledger(payment_id=url.payment_id)) == ["AUTHORIZE", "CAPTURE"]

    history = await stack.client.get_workflow_handle(req.workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [payload] = started.input.payloads
    assert payload.metadata["encoding"] == ENCODING
    assert req.invoice_number.encode() not in payload.data
    written_with = payload.metadata[KEY_ID_METADATA].decode()
    assert written_with == load_keys().current
    # Recording writes with the committed key; any other session with a random key of its own
    # (which it keeps the committed one beside, to read the saved histories).
    if os.environ.get("RECORD_HISTORIES"):
        assert written_with == HISTORY_KEYS.current
    else:
        assert written_with != HISTORY_KEYS.current
        assert HISTORY_KEYS.current in load_keys().keys
