"""Worker processes for the benchmark, so their CPU and memory can be read apart from the driver's.

    python worker.py                                  # the payments worker, exactly as shipped
    python -m bench.worker payments --options JSON    # the same, with extra Worker options (tuning)
    python -m bench.worker floor [--options JSON]     # the floor workflows, same Worker options

Both read the project's configuration from the environment (TEMPORAL_ADDRESS, BKASH_*, MONETIX_*,
PAYMENTS_*) and stop gracefully on SIGTERM, like ``worker.py``. The floor worker is built from the
keyword arguments ``worker.build_worker`` gives the real one, with only the workflows, activities
and task queue swapped, so a tuning of ``build_worker`` applies to both.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import signal
from unittest import mock

from temporalio.worker import (
    PollerBehaviorAutoscaling,
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
)

import runtime_exit
import worker as payments_worker
from bench import floor
from config import connect_temporal

FLOOR_SUFFIX = "-floor"


def worker_options(raw: dict) -> dict:
    """JSON-friendly tuning options → Worker keyword arguments.

    Plain Worker arguments pass through (``max_cached_workflows``, ``max_concurrent_workflow_tasks``,
    ``nonsticky_to_sticky_poll_ratio``, ``disable_eager_activity_execution``, ...); ``workflow_pollers``
    / ``activity_pollers`` = N set a simple maximum, ``"auto"`` autoscaling pollers;
    ``unsandboxed`` = true runs workflows without the sandbox (a what-if: it drops the determinism
    guard, so the project would not ship it)."""
    out = {}
    for key, value in raw.items():
        if key == "unsandboxed":
            if value:
                out["workflow_runner"] = UnsandboxedWorkflowRunner()
        elif key in ("workflow_pollers", "activity_pollers"):
            behaviour = (PollerBehaviorAutoscaling() if value == "auto"
                         else PollerBehaviorSimpleMaximum(int(value)))
            out[key.replace("_pollers", "_task_poller_behavior")] = behaviour
        else:
            out[key] = value
    return out


def build_floor_worker(client, task_queue: str, options: dict) -> Worker:
    captured: dict = {}

    def capture(_client, **kwargs):
        captured.update(kwargs)

    with mock.patch.object(payments_worker, "Worker", capture):
        payments_worker.build_worker(client, task_queue, [], **options)
    captured.update(task_queue=task_queue, workflows=floor.WORKFLOWS, activities=floor.ACTIVITIES)
    return Worker(client, **captured)


async def run_floor(options: dict) -> None:
    from config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    task_queue = load_settings().task_queue + FLOOR_SUFFIX
    client = await connect_temporal()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with build_floor_worker(client, task_queue, options):
        logging.info("floor worker polling task queue %r", task_queue)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["payments", "floor"])
    parser.add_argument("--options", default="{}", help="extra Worker options as JSON")
    args = parser.parse_args()
    options = worker_options(json.loads(args.options))
    if args.mode == "payments":
        payments_worker.build_worker = functools.partial(payments_worker.build_worker, **options)
        runtime_exit.run(payments_worker.main())
    else:
        runtime_exit.run(run_floor(options))


if __name__ == "__main__":
    main()
