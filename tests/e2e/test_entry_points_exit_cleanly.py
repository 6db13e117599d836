"""Every entry point ends with its own exit status, never with the interpreter's abort.

Without runtime_exit, about 1 `python starter.py ...` run in 7 on this machine ended with
"Fatal Python error: PyGILState_Release ... finalizing" (exit 134, sometimes 139): a Temporal core
thread still inside ``loop.call_soon_threadsafe`` (GIL released in the self-pipe ``send``) re-took
the GIL after the main thread had begun finalizing (see runtime_exit's docstring). The repeated
runs below would catch that by chance; the widened-window runs make it certain: the core thread
is held inside ``_write_to_self`` for a second, so the process exits cleanly only if the main
thread waits for it, and the control run proves the same process aborts without the wait.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import sys
from pathlib import Path

from tests.support.bkash import pay
from tests.support.monetix import start_gate

ROOT = Path(__file__).resolve().parents[2]
FATAL = "Fatal Python error"

# Runs starter.py's __main__ with the core thread's window widened: after writing to the loop's
# self-pipe, a non-main thread sleeps ~1 s with the GIL released, as a slow `send` would.
WIDENED = """
import asyncio.selector_events as se, runpy, sys, threading, time
import runtime_exit
original = se.BaseSelectorEventLoop._write_to_self
def slow_write_to_self(self):
    original(self)
    if threading.get_ident() != threading.main_thread().ident:
        for _ in range(1000):
            time.sleep(0.001)
se.BaseSelectorEventLoop._write_to_self = slow_write_to_self
if sys.argv[1] == "without-wait":
    runtime_exit.wait_for_foreign_threads = lambda *a, **k: True
sys.argv = ["starter.py", *sys.argv[2:]]
runpy.run_path("starter.py", run_name="__main__")
"""


def no_core_dump() -> None:
    """An abort must not leave a core file in the repository (core_pattern is often "core")."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def cli_env(stack, dev_env) -> dict[str, str]:
    """What a merchant's shell has: the Temporal connection and the payments task queue."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BKASH_", "MONETIX_", "PAYMENTS_", "TEMPORAL_"))}
    env.update(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
               TEMPORAL_NAMESPACE="default", PAYMENTS_TASK_QUEUE=stack.settings.task_queue,
               PAYMENTS_CALLBACK_BASE_URL=stack.endpoint_url,
               # the payload key: merchant code reads the payments' (encrypted) state with it
               PAYMENTS_ENCRYPTION_KEYS=os.environ["PAYMENTS_ENCRYPTION_KEYS"])
    return env


async def run(argv: list[str], env: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, preexec_fn=no_core_dump)
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, err.decode(errors="replace")


async def run_all(argvs: list[list[str]], env: dict[str, str], parallel: int = 3):
    gate = asyncio.Semaphore(parallel)

    async def one(argv):
        async with gate:
            return argv, *await run(argv, env)
    return await asyncio.gather(*(one(a) for a in argvs))


async def test_cli_subcommands_exit_0_every_time(stack, dev_env):
    req, _ = await pay(stack)
    mx, _ = await start_gate(stack)
    env = cli_env(stack, dev_env)
    commands = [["list"], ["list", "--provider", "monetix"], ["status", req.invoice_number],
                ["gate-status", mx.sale.payment_id]]
    runs = await run_all([[sys.executable, "starter.py", *c] for c in commands] * 8, env)
    failures = [(argv[2:], code, err[-300:]) for argv, code, err in runs if code != 0 or FATAL in err]
    assert not failures, f"{len(failures)}/{len(runs)} runs failed: {failures[:3]}"


async def test_exit_waits_for_the_core_thread_still_inside_python(stack, dev_env):
    env = cli_env(stack, dev_env)
    widened = [sys.executable, "-c", WIDENED]
    runs = await run_all([[*widened, "with-wait", "list"]] * 3, env)
    assert [(code, FATAL in err) for _, code, err in runs] == [(0, False)] * 3, runs
    # Control: the same widened window without the wait aborts the interpreter.
    control = await run_all([[*widened, "without-wait", "list"]] * 2, env)
    assert all(code in (-signal.SIGABRT, -signal.SIGSEGV, 134, 139) for _, code, _ in control), \
        control


async def test_worker_and_endpoint_stop_on_sigterm_with_status_0(stack, dev_env):
    """The long-running entry points: SIGTERM drains them and they exit 0 (no abort); the endpoint
    without Monetix settings says at start-up that it refuses Monetix callbacks."""
    from embedded import free_port

    port = free_port()
    env = {**cli_env(stack, dev_env), "BKASH_BASE_URL": stack.settings.bkash.base_url,
           "BKASH_APP_KEY": "k", "BKASH_APP_SECRET": "s", "BKASH_USERNAME": "u",
           "BKASH_PASSWORD": "p", "BKASH_TOKEN_CACHE_FILE": "",
           "PAYMENTS_LINK_SECRET": stack.settings.link_secret.get_secret_value(),
           "PAYMENTS_TASK_QUEUE": f"{stack.settings.task_queue}-exit"}
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "worker.py", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
    endpoint = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "endpoint", "--port", str(port), cwd=ROOT, env=env,
        stderr=asyncio.subprocess.PIPE)
    try:
        seen = {"worker": b"", "endpoint": b""}
        for name, proc, ready in (("worker", worker, b"worker polling"),
                                  ("endpoint", endpoint, b"Uvicorn running")):
            while ready not in seen[name]:
                line = await asyncio.wait_for(proc.stderr.readline(), 30)
                assert line, f"{name} ended before it was up: {seen[name].decode()}"
                seen[name] += line
        for proc in (worker, endpoint):
            proc.send_signal(signal.SIGTERM)
        for name, proc in (("worker", worker), ("endpoint", endpoint)):
            rest = await asyncio.wait_for(proc.stderr.read(), 40)
            seen[name] += rest
            assert await proc.wait() == 0, seen[name].decode()[-2000:]
            assert FATAL.encode() not in seen[name]
        refusal = [line for line in seen["endpoint"].decode().splitlines()
                   if "Monetix callback will be refused" in line]
        assert len(refusal) == 1 and "MONETIX_PROJECT_ID" in refusal[0] \
            and "MONETIX_SECRET_KEY" in refusal[0], seen["endpoint"].decode()
    finally:
        for proc in (worker, endpoint):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
