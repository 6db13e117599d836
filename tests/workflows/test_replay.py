"""Replay every saved history (tests/histories) against today's workflow code: a change that would
break payments in flight fails here. Regenerate deliberately with `make histories`. The older ones
are plain (saved before encryption); those recorded since are ciphertext under the committed
test-only key tests/histories/test-payload-keys, which the session's converter holds."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from tests.conftest import DATA_CONVERTER, HISTORY_KEYS  # the project's one converter
from temporalio.worker import Replayer

from merchant_client.encryption import (
    ENCODING, KEY_ID_METADATA, EncryptionKeys, data_converter, new_key_line)
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))


def test_there_is_a_saved_history_for_every_path():
    names = {p.stem for p in HISTORIES}
    for path in ("bkash__test_approved_then_delivered", "bkash__test_service_failed_voids",
                 "bkash__test_customer_cancel", "bkash__test_insufficient_balance",
                 "bkash__test_lost_execute_response", "bkash__test_execute_lost_before",
                 "bkash__test_no_service_decision_before_the_hold_deadline",
                 "bkash__test_customer_never_approving", "bkash__test_closed_tab",
                 "bkash__test_operator_cancel",
                 "monetix__test_gate_purchase_with_instructions", "monetix__test_insufficient_balance",
                 "monetix__test_customer_paying_a_different_amount",
                 "monetix__test_omitted_account_number", "monetix__test_lost_final_callback",
                 "monetix__test_duplicate_and_out_of_order", "monetix__test_transaction_id_by_signal",
                 "monetix__test_customer_never_submitting", "monetix__test_payment_page_purchase",
                 "monetix__test_payment_page_decline", "monetix__test_payment_page_never_used",
                 "bkash__test_events_reach_a_receiver", "notification_stream__test_events_reach",
                 "notification_stream__test_an_event_undelivered",
                 "notification_replay__test_an_event_undelivered",
                 "reconciliation__test_a_window_reports", "reconciliation_batch__test_a_window",
                 "bkash__test_a_capture_recorded_encrypted",
                 # the stage upsert carrying PaymentStageSince (patch stage-since-search-attribute)
                 "bkash__test_a_capture_bkash_keeps_refusing_is_counted_stalled"):
        assert any(n.startswith(path) for n in names), f"no saved history for the {path} path"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays_without_nondeterminism(path):
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json(path.stem, data)
    await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(history)


ENCRYPTED = "bkash__test_a_capture_recorded_encrypted"


async def test_the_encrypted_history_replays_only_with_the_test_key():
    [path] = [p for p in HISTORIES if p.stem == ENCRYPTED]
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    started = history.events[0].workflow_execution_started_event_attributes
    [payload] = started.input.payloads
    assert payload.metadata["encoding"] == ENCODING  # ciphertext on disk, as in the database
    assert payload.metadata[KEY_ID_METADATA].decode() == HISTORY_KEYS.current
    # With only the session's own key (not the saved histories' one) it cannot be replayed, and
    # the failure names the key it needs.
    without = data_converter(EncryptionKeys.parse(new_key_line("test-session"), "test"))
    with pytest.raises(Exception) as err:
        await Replayer(workflows=WORKFLOWS, data_converter=without).replay_workflow(history)
    assert HISTORY_KEYS.current in str(err.value)
    await Replayer(workflows=WORKFLOWS,
                   data_converter=data_converter(HISTORY_KEYS)).replay_workflow(history)
