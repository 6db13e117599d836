"""Replay every saved history (tests/histories) against today's workflow code: a change that would
break payments in flight fails here. Regenerate deliberately with `make histories`."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))


def test_there_is_a_saved_history_for_every_bkash_path():
    names = {p.stem for p in HISTORIES}
    for path in ("approved_then_delivered", "service_failed_voids", "customer_cancel",
                 "insufficient_balance", "lost_execute_response", "execute_lost_before",
                 "hold_deadline", "never_approving", "closed_tab"):
        assert any(path in n for n in names), f"no saved history for the {path} path"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays_without_nondeterminism(path):
    data = json.loads(path.read_text())
    history = WorkflowHistory.from_json(path.stem, data)
    await Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter).replay_workflow(history)
