"""The worker processes of ``--scale`` (bench/scale.py): started with a cache size, stopped,
restarted, killed with ``kill -9``; their RSS sampled and their cache read from their metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import procstat, run
from bench import scale_phases as ph
from embedded import free_port

ROOT = run.ROOT
# The worker's cache setting, when worker.py has it (it is being added); otherwise the cache size
# goes to the Worker through bench/worker.py's options.
CACHE_SETTING = "PAYMENTS_WORKER_CACHE_SIZE"
SDK_DEFAULT_CACHE = 1000  # temporalio's Worker(max_cached_workflows=...) default


def cache_setting_supported() -> bool:
    return any(CACHE_SETTING in (ROOT / f).read_text() for f in ("worker.py", "config.py"))


# -- one worker process, started, stopped and killed ---------------------------------------------

class WorkerProc:
    """The payments worker (``python worker.py`` as shipped when nothing is changed) or the floor
    worker, restarted with another cache size or after ``kill -9``; its CPU summed over its lives."""

    def __init__(self, mode: str, env: dict, log_dir: Path, options: dict) -> None:
        self.mode, self.env, self.log_dir, self.options = mode, env, log_dir, options
        self.proc: subprocess.Popen | None = None
        self.lives = 0
        self.cpu_before = 0.0
        self.metrics_url: str | None = None
        self.cache: int | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else -1

    def cpu_seconds(self) -> float:
        with contextlib.suppress(OSError):
            return self.cpu_before + procstat.cpu_seconds(self.pid)
        return self.cpu_before

    def _command(self, cache: int | None) -> tuple[list[str], dict]:
        env, options = dict(self.env), dict(self.options)
        if cache is not None:
            if self.mode == "payments" and cache_setting_supported():
                env[CACHE_SETTING] = str(cache)
            else:
                options["max_cached_workflows"] = cache
        if self.mode == "payments":  # metrics on, as a production worker runs (README "Metrics")
            bind = f"127.0.0.1:{free_port()}"
            env["PAYMENTS_METRICS_ADDRESS"] = bind
            self.metrics_url = f"http://{bind}/metrics"
        if self.mode == "payments" and not options:
            return [sys.executable, "worker.py"], env
        return [sys.executable, "-m", "bench.worker", self.mode, "--options",
                json.dumps(options)], env

    async def start(self, cache: int | None, timeout: float = 90) -> float:
        """Seconds from spawning to the worker's "polling task queue" line."""
        self.lives += 1
        self.cache = cache
        log = self.log_dir / f"{self.mode}-{self.lives}.log"
        cmd, env = self._command(cache)
        started = time.monotonic()
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        while "polling task queue" not in log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() - started > timeout:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.mode} worker did not start ({self.proc.returncode}):\n"
                                   f"{tail}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    async def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.cpu_before = self.cpu_seconds()
            await run.stop_worker(self.proc)

    async def kill(self) -> float:
        """``kill -9``; returns the wall-clock time of the kill."""
        self.cpu_before = self.cpu_seconds()
        at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        while self.proc.poll() is None:
            await asyncio.sleep(0.01)
        return at

    async def restart(self, cache: int | None) -> float:
        await self.stop()
        return await self.start(cache)


async def sticky_cache(http: httpx.AsyncClient, url: str | None) -> float | None:
    """Workflows in the worker's cache, from its own metric (temporal_sticky_cache_size)."""
    if not url:
        return None
    with contextlib.suppress(Exception):
        text = (await http.get(url, timeout=5)).text
        values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("temporal_sticky_cache_size")]
        return sum(values) if values else None
    return None


async def sample_rss(worker: WorkerProc, server_pid: int, progress: ph.Progress, out: list,
                     every: float = 0.5) -> None:
    started = time.monotonic()
    while True:
        row = {"t": round(time.monotonic() - started, 2), "phase": progress.phase,
               "done": progress.done, "cache": worker.cache}
        for name, pid in (("worker_mib", worker.pid), ("server_mib", server_pid)):
            with contextlib.suppress(OSError):
                rss = procstat.rss_bytes(pid)
                if rss:  # 0: a worker between its lives (exiting, a zombie)
                    row[name] = round(rss / 2**20, 1)
        out.append(row)
        await asyncio.sleep(every)
