"""The parts of the system the chaos run kills and restarts, each a real OS process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from contracts.common import SearchAttribute
from embedded import SQLITE_PRAGMAS

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent


class Managed:
    """A child process with its output appended to a log file (scanned for secrets afterwards)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.kills = 0
        self.restarts = 0
        self.down_seconds = 0.0  # from each kill -9 until the restarted process was ready
        self.up_since = time.monotonic()  # when it was last ready
        # One restart at a time: the run's random kills and a refund's targeted kill may meet.
        self._restarting = asyncio.Lock()
        # Held by whoever decides to kill it next (the run's clock or a refund's targeted kill),
        # so that both respect the minimum time up (chaos.pacing.ProcessFaults.killing).
        self.kill_turn = asyncio.Lock()

    # A worker or an endpoint started while the dev server restarts exits at once (it cannot
    # connect): it is started again, as a process manager would, until it is ready.
    start_attempts = 1

    async def start(self) -> None:
        for attempt in range(self.start_attempts):
            self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=log,
                start_new_session=True)
            log.close()
            try:
                await self.ready()
                self.up_since = time.monotonic()
                return
            except RuntimeError:
                if self.proc.returncode is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
                if attempt == self.start_attempts - 1:
                    raise
                await asyncio.sleep(1.0)

    def exited(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None

    async def ready(self) -> None:
        await asyncio.sleep(0.5)

    def kill9(self) -> None:
        if self.proc and self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.kills += 1

    async def wait_dead(self) -> None:
        if self.proc:
            await self.proc.wait()

    async def restart(self, down_for: float = 0.0) -> None:
        async with self._restarting:
            killed = time.monotonic()
            self.kill9()
            await self.wait_dead()
            await asyncio.sleep(down_for)
            self.restarts += 1
            try:
                await self.start()
            finally:
                self.down_seconds += time.monotonic() - killed

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                self.kill9()
                await self.proc.wait()


class DevServer(Managed):
    """`temporal server start-dev` with a persistence file, so a restart keeps every workflow."""

    def __init__(self, port: int, ui_port: int, db_file: Path, log_dir: Path) -> None:
        argv = [str(BIN / "temporal"), "server", "start-dev", "--ip", "127.0.0.1",
                "--port", str(port), "--ui-port", str(ui_port), "--db-filename", str(db_file),
                "--log-level", "error"]
        # SQLite in WAL mode, as the embedded default runs it (embedded.SQLITE_PRAGMAS): faster
        # commits, and readers no longer wait for the writer, which a thousand payments need.
        for pragma in SQLITE_PRAGMAS:
            argv += ["--sqlite-pragma", pragma]
        for name in SearchAttribute:
            argv += ["--search-attribute", f"{name.value}={name.kind}"]
        super().__init__("temporal", argv, {}, log_dir)
        self.address = f"127.0.0.1:{port}"

    async def ready(self) -> None:
        from temporalio.client import Client

        for _ in range(200):
            try:
                client = await Client.connect(self.address)
                await client.count_workflows()
                return
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.1)
        raise RuntimeError("the Temporal dev server did not come up")


class Endpoint(Managed):
    start_attempts = 30

    def __init__(self, port: int, env: dict[str, str], log_dir: Path) -> None:
        super().__init__("endpoint", [sys.executable, "-m", "endpoint", "--port", str(port)], env,
                         log_dir)
        self.url = f"http://127.0.0.1:{port}"

    async def ready(self) -> None:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if self.exited():
                    raise RuntimeError(f"the endpoint exited with {self.proc.returncode}")
                await asyncio.sleep(0.05)
        raise RuntimeError("the merchant endpoint did not come up")


class WorkerProcess(Managed):
    """One worker host: ``name`` names its log (worker.log, worker-2.log, ...); ``env`` holds its
    own token cache file (BKASH_TOKEN_CACHE_FILE) and, with several, the shared BKASH_TOKEN_STORE."""

    start_attempts = 30

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "worker") -> None:
        super().__init__(name, [sys.executable, "worker.py"], env, log_dir)

    async def ready(self) -> None:
        for _ in range(400):
            with open(self.log_path, "rb") as log:
                log.seek(self._offset)
                if b"worker polling" in log.read():
                    return
            if self.exited():
                raise RuntimeError(f"the {self.name} exited with {self.proc.returncode}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the {self.name} did not come up")
