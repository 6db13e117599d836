"""How every entry point (starter.py, worker.py, demo.py, `python -m endpoint`, chaos, bench) runs
its asyncio main and leaves the process: ``sys.exit(runtime_exit.run(main()))``.

Two process-level rules, kept in one place:

1. **Leave only once Temporal's threads are out of Python.** temporalio's Rust core answers every
   awaited call from a Tokio thread that takes the GIL and calls ``loop.call_soon_threadsafe``;
   that writes a byte to the loop's self-pipe with ``socket.send``, which *releases the GIL*. The
   main thread can then consume the result, finish ``asyncio.run`` and enter interpreter
   finalization before the Tokio thread is back from ``send``. When that thread then re-takes the
   GIL, CPython 3.11 ends it with ``pthread_exit``; the forced unwind runs PyO3's GIL-guard
   destructor, ``PyGILState_Release`` finds a thread state that is not current and aborts the
   process: ``Fatal Python error: PyGILState_Release: thread state ... must be current when
   releasing / Python runtime state: finalizing`` (exit 134 or 139; 23 of 150 `starter.py list`
   runs on this machine; the core dump shows the aborting thread "(Exiting)" in the completion
   closure of pyo3-async-runtimes' ``future_into_py``, the main thread in ``Py_FinalizeEx``;
   temporalio/sdk-python#300). :func:`run` therefore waits, after the loop is
   closed and before the interpreter finalizes, until no foreign (non-``threading``) thread has a
   Python frame, sleeping in between so such a thread can take the GIL back and finish.
   ``tests/e2e/test_entry_points_exit_cleanly.py`` widens that window to make the crash certain
   without this wait.

2. **SIGTERM stops a process the way Ctrl-C does.** By default SIGTERM (``kill``, ``make`` being
   terminated, ``docker stop``) ends Python at once: no ``finally``, no ``async with`` exit, so a
   Temporal dev server, a uvicorn port or a worker poll outlives its owner. :func:`run` turns SIGINT
   and SIGTERM into a cancellation of the main task, so every clean-up runs, then raises
   :class:`Stopped` (a ``SystemExit`` with the usual 128 + signal number). A repeated signal
   cancels the clean-up step in progress. A main that installs its own handlers (the worker's
   graceful drain) replaces these.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Generous: a Tokio thread needs microseconds once it has the GIL; this only bounds a pathological
# case (a foreign thread stuck in Python) so the process still ends.
QUIESCE_TIMEOUT_SECONDS = 5.0


class Stopped(SystemExit):
    """The main task was cancelled by SIGINT/SIGTERM and has finished cleaning up."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def foreign_threads_in_python() -> list[int]:
    """Idents of threads that are running Python code but were not started by ``threading``:
    Temporal's Tokio threads inside a callback (``_DummyThread`` is what ``threading`` makes of a
    foreign thread that asked for ``current_thread()``, so it counts as foreign)."""
    ours = {t.ident for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    return [ident for ident in sys._current_frames() if ident not in ours]


def wait_for_foreign_threads(timeout: float = QUIESCE_TIMEOUT_SECONDS) -> bool:
    """Sleep (GIL released) until no foreign thread is inside Python; False on timeout."""
    deadline = time.monotonic() + timeout
    while foreign_threads_in_python():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)
    return True


async def _cancel_on_signals(main: Coroutine[Any, Any, T], received: list[int]) -> T:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        # A repeated signal cancels again: it skips a clean-up step that hangs (later ones, such
        # as stopping the dev server, still run), so an impatient second Ctrl-C works as expected.
        received.append(signum)
        task.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop, signum)
    return await main


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` with SIGINT/SIGTERM as cancellation (then :class:`Stopped`), leaving
    only once no Temporal thread is inside Python (see the module docstring)."""
    received: list[int] = []
    try:
        return asyncio.run(_cancel_on_signals(main, received))
    except Exception as err:
        if not received:
            raise
        # The cancellation often surfaces as another exception: temporalio turns a cancelled
        # update call into WorkflowUpdateRPCTimeoutOrCancelledError, for one. Stopping is the
        # outcome; name it in one line instead of a traceback.
        print(f"{signal.Signals(received[0]).name}: the interrupted call ended with "
              f"{type(err).__name__}: {err}", file=sys.stderr)
        raise Stopped(received[0]) from None
    except asyncio.CancelledError:
        if received:
            raise Stopped(received[0]) from None
        raise
    finally:
        wait_for_foreign_threads()
