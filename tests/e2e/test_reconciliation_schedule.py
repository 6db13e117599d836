"""The reconciliation schedule on the dev server: created once and updated in place (a paused
schedule stays paused); a fire reconciles the whole window that ended before its scheduled time,
under that window's own workflow id; the CLI's `reconcile run` prints the report's paths. The
listing is stubbed to an empty window here: what a run checks is test_reconciliation.py's."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.worker import Worker

from activities.reconciliation import ReconciliationActivities
from contracts.reconciliation import (
    RUN_WORKFLOW,
    Page,
    PageRequest,
    ReconciliationActivity,
    ReconciliationInput,
    ReconciliationReport,
    window_ending,
)
from embedded import ensure_search_attributes
from merchant_client.reconciliation import ensure_schedule, trigger_schedule
from merchant_client.reconciliation_cli import add_reconcile_parser, prepare_reconcile, run_reconcile
from workflows import search_attributes as sa
from workflows.reconciliation import SCHEDULED_START, ReconciliationBatch, ReconciliationRun


@activity.defn(name=ReconciliationActivity.LIST_PAGE)
async def empty_window(req: PageRequest) -> Page:
    return Page()


async def test_the_schedule_is_created_once_then_updated_in_place_and_stays_paused(dev_env):
    client = dev_env.client
    schedule_id, queue = f"recon-{uuid.uuid4().hex[:8]}", "recon-nowhere"
    assert await ensure_schedule(client, schedule_id=schedule_id, every=timedelta(hours=24),
                                 task_queue=queue) == "created"
    handle = client.get_schedule_handle(schedule_id)
    await handle.pause(note="bank holiday")
    assert await ensure_schedule(client, schedule_id=schedule_id, every=timedelta(hours=6),
                                 lag=timedelta(minutes=5), task_queue=queue) == "updated"
    desc = await handle.describe()
    [interval] = desc.schedule.spec.intervals
    assert (interval.every, interval.offset) == (timedelta(hours=6), timedelta(minutes=5))
    assert desc.schedule.state.paused and desc.schedule.state.note == "bank holiday"
    [inp] = await client.data_converter.decode(list(desc.schedule.action.args),
                                               [ReconciliationInput])
    assert inp.window is None and inp.window_length == timedelta(hours=6)
    assert inp.lag == timedelta(minutes=5)
    await handle.delete()


async def test_a_scheduled_fire_reconciles_the_window_that_ended_before_it(dev_env, tmp_path):
    client = dev_env.client
    await ensure_search_attributes(client)
    schedule_id, queue = f"recon-{uuid.uuid4().hex[:8]}", f"recon-{uuid.uuid4().hex[:8]}"
    real = ReconciliationActivities(report_dir=tmp_path)
    acts = [a for a in real.all() if a.__name__ != "reconciliation_list_page"] + [empty_window]
    async with Worker(client, task_queue=queue, workflows=[ReconciliationRun, ReconciliationBatch],
                      activities=acts):
        await ensure_schedule(client, schedule_id=schedule_id, every=timedelta(hours=1),
                              lag=timedelta(0), task_queue=queue)
        try:
            await trigger_schedule(client, schedule_id)
            fired = await _first_run(client, schedule_id)
            report = await client.get_workflow_handle(
                fired.id, result_type=ReconciliationReport).result()
        finally:
            await client.get_schedule_handle(schedule_id).delete()
        desc = await client.get_workflow_handle(fired.id).describe()
    scheduled = desc.typed_search_attributes.get(SCHEDULED_START)
    window = window_ending(scheduled, timedelta(hours=1))
    assert desc.workflow_type == RUN_WORKFLOW
    assert report.window == window and report.workflow_id == window.workflow_id
    assert report.divergence_count == 0 and report.json_path.startswith(str(tmp_path))
    assert desc.typed_search_attributes.get(sa.RECONCILIATION_DIVERGENCES) == 0


async def test_the_cli_runs_a_window_and_prints_the_report_paths_and_a_summary(dev_env, tmp_path,
                                                                               capsys):
    client = dev_env.client
    await ensure_search_attributes(client)
    queue = f"recon-{uuid.uuid4().hex[:8]}"
    parser = argparse.ArgumentParser()
    add_reconcile_parser(parser.add_subparsers(dest="command"))
    real = ReconciliationActivities(report_dir=tmp_path)
    acts = [a for a in real.all() if a.__name__ != "reconciliation_list_page"] + [empty_window]
    async with Worker(client, task_queue=queue, workflows=[ReconciliationRun, ReconciliationBatch],
                      activities=acts):
        cmd = prepare_reconcile(parser.parse_args(
            ["reconcile", "run", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T01:00:00Z"]))
        await run_reconcile(client, cmd, task_queue=queue)
    out = capsys.readouterr().out.splitlines()
    stem = tmp_path.resolve() / "reconcile_20200101T000000Z_20200101T010000Z"
    assert out[:2] == [f"json: {stem}.json", f"csv: {stem}.csv"]
    assert out[2].startswith("0 divergences in 2020-01-01T00:00:00Z..2020-01-01T01:00:00Z")


async def _first_run(client, schedule_id: str, timeout: float = 20.0):
    query = f'WorkflowId STARTS_WITH "{schedule_id}-"'
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [wf async for wf in client.list_workflows(query)]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the schedule {schedule_id} started no run")
        await asyncio.sleep(0.1)
