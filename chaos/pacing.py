"""How the chaos run is paced: payments started at a rate, process faults by time (never by the
payment count), and every window and budget of the run sized from the configured windows.

A worker killed every 1.6 s while a restart takes 1.65 s never runs (issue 11: 100 kills in 160 s
at ``--count 1000``, the worker up 10.8 s of 178 s), so each worker is killed on its own clock: a
kill every ``worker_kill_every`` seconds on average, and never before it has been up
``worker_min_up`` seconds. The dev server and the endpoint are restarted on clocks of their own.
Faults stop when the last payment has been driven; what is still open then must close within
``Budgets.end_wait``, the longest any configured path can take.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.processes import DevServer, Endpoint, WorkerProcess

# The longest one merchant call may wait for the system to come back: a dev server restart on a
# persistence file of a thousand payments (its `ready` allows 20 s), a worker restart and the
# replay of the workflows it picks up again (a few s), plus the client's retry backoff.
RECOVERY_SECONDS = 45.0
# Monetix: the status request is allowed 10 s after the sale (workflows/monetix_purchase.py
# STATUS_MIN_DELAY); a window's end asks it up to 3 times, 10 s apart.
MONETIX_STATUS_DELAY = 10.0
MONETIX_WINDOW_POLLS = 3
# The spent-budget mode: an execute waits until the window's oldest call leaves it, at most the
# window; the payment's token_wait allows that and this much more (a worker restart, the retry).
TOKEN_WAIT_MARGIN = 15.0


@dataclass(frozen=True)
class Pacing:
    """The run's clocks. ``customer_window`` is what the merchant configures for a customer: the
    bKash approval window, the Monetix transaction-ID and clarification windows, and how long an
    execute waits for a bKash token (the purchase requests let the merchant choose each)."""

    start_rate: float = 2.0            # payments started per second
    workers: int = 1                   # worker processes ("hosts")
    # A restarted worker replays every payment it picks up again, so on 2 cores with a hundred
    # payments in flight it needs tens of seconds up between kills to get ahead.
    worker_kill_every: float = 45.0    # mean seconds between two kills of one worker (0: none)
    worker_min_up: float = 20.0        # a worker is up at least this long before its next kill
    server_restart_every: float = 300.0  # dev server restarts (0: none)
    endpoint_restart_every: float = 90.0  # endpoint kill -9 (0: none)
    customer_window: float = 60.0
    hold_deadline: float = 15.0        # bKash: the merchant's service decision
    instructions_wait: float = 5.0     # Monetix: callbacks before the status request
    final_callback_wait: float = 3.0
    # The spent-budget mode (chaos/tokens.py): bKash's rolling hour and its lockout are this many
    # seconds, at the sandbox and the worker alike; 0: off (the real hour).
    token_budget_window: float = 0.0

    def __post_init__(self) -> None:
        if self.start_rate <= 0 or self.workers < 1 or self.customer_window <= 0:
            raise ValueError("start rate and customer window must be positive, workers ≥ 1")
        if self.token_budget_window < 0:
            raise ValueError("--token-budget-spent must be a number of seconds (0: off)")

    @property
    def token_wait(self) -> float:
        """How long an execute not sent for want of a token waits for one (token_wait)."""
        if not self.token_budget_window:
            return self.customer_window
        return max(self.customer_window, self.token_budget_window + TOKEN_WAIT_MARGIN)
        if self.worker_kill_every and self.worker_min_up <= 0:
            raise ValueError("--worker-min-up must be positive: a worker needs time to work")

    def spread(self, count: int) -> float:
        """The payments' starts are spread over this many seconds."""
        return count / self.start_rate


@dataclass(frozen=True)
class Budgets:
    """How long the run waits for things, each derived from the configured windows."""

    start: float       # merchant code retries a start (update-with-start) this long
    stage: float       # a driver waits this long for AUTHORIZED / the Monetix instructions
    end_wait: float    # after the last payment was driven, every payment workflow closes in this
    refunds: float     # every refund is final within this, once the payments have closed

    @classmethod
    def of(cls, pacing: Pacing, provider_timeout: float, max_create_attempts: int = 3) -> Budgets:
        call = provider_timeout * 2 + 5      # execute / query / sale / clarification start-to-close
        settle = provider_timeout * 3 + 5    # capture / void start-to-close
        window = pacing.customer_window
        # bKash, worst path: every create's approval window and its execute + query, an execute
        # waiting for a token (token_wait), the hold deadline, a settle retried.
        bkash = (max_create_attempts * (window + 3 * call) + pacing.token_wait
                 + pacing.hold_deadline + 3 * settle)
        # Monetix, worst path: instructions, a clarification window, the transaction-ID window,
        # the final callback's wait, the window-end status requests.
        monetix = (pacing.instructions_wait + 2 * window + pacing.final_callback_wait
                   + MONETIX_STATUS_DELAY + MONETIX_WINDOW_POLLS * (call + 10))
        return cls(start=window + RECOVERY_SECONDS,
                   stage=max(window, pacing.token_wait) + 3 * call + RECOVERY_SECONDS,
                   end_wait=max(bkash, monetix) + RECOVERY_SECONDS,
                   refunds=max(90.0, 2 * RECOVERY_SECONDS + 6 * call))


@dataclass
class _Rider:
    go: asyncio.Event = field(default_factory=asyncio.Event)     # the kill is due: send now
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # sent: kill now


class ProcessFaults:
    """kill -9 of each worker, restarts of the dev server and of the endpoint, each on its own
    clock and Random (seeded from the run's seed, so the payments' draws are not touched), until
    ``done`` is set. A worker is not killed while the dev server restarts (it would only exit and
    be started again; the endpoint likewise) and the server is not restarted while either is."""

    def __init__(self, seed: int, pacing: Pacing, span: float, server: DevServer,
                 endpoint: Endpoint, workers: list[WorkerProcess],
                 count: Callable[[str], None]) -> None:
        self.seed, self.pacing, self.span = seed, pacing, span
        self.server, self.endpoint, self.workers = server, endpoint, workers
        self.count = count  # report.injected[kind] += 1
        self.server_up = asyncio.Event()
        self.server_up.set()
        self.restarting = 0
        self.started = self.stopped = 0.0
        # Refunds waiting to be in flight at a worker's next kill (at_next_kill), per worker.
        self._riders: dict[str, list[_Rider]] = {w.name: [] for w in workers}
        self._running = False

    async def run(self, done: asyncio.Event) -> None:
        self.started = time.monotonic()
        self._running = self.pacing.worker_kill_every > 0
        p = self.pacing
        loops = [self._every(f"worker-{i}", p.worker_kill_every, p.worker_min_up, done,
                             lambda rng, w=w: self._kill_worker(w, rng))
                 for i, w in enumerate(self.workers, 1)]
        loops.append(self._every("server", p.server_restart_every, 0.0, done,
                                 self._restart_server))
        loops.append(self._every("endpoint", p.endpoint_restart_every, 0.0, done,
                                 self._restart_endpoint))
        try:
            await asyncio.gather(*loops)
        finally:
            self._running = False
            self.stopped = time.monotonic()
            for riders in self._riders.values():  # none should be left: drivers are done
                for rider in riders:
                    rider.go.set()

    async def _every(self, name: str, every: float, min_gap: float, done: asyncio.Event,
                     action: Callable[[random.Random], Awaitable[None]]) -> None:
        if every <= 0:
            return
        rng = random.Random(f"chaos-{self.seed}-{name}")
        # The first within the run even when it is shorter than the period, so each kind happens.
        delay = max(min_gap, rng.uniform(0.3, 1.0) * min(every, max(self.span, 1.0)))
        while True:
            try:
                await asyncio.wait_for(done.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
            await action(rng)
            # Measured from when the process is back: it is up at least min_gap before the next.
            delay = max(min_gap, rng.uniform(0.5, 1.5) * every)

    @contextlib.asynccontextmanager
    async def killing(self, worker: WorkerProcess) -> AsyncIterator[None]:
        """The turn to kill ``worker``: once it has been up ``worker_min_up`` seconds and the dev
        server is up. Every kill of a worker takes it (the run's clock, and a refund's own kill
        when there is no clock)."""
        async with worker.kill_turn:
            while True:
                await self.server_up.wait()
                wait = worker.up_since + self.pacing.worker_min_up - time.monotonic()
                if wait <= 0 and self.server_up.is_set():
                    break
                await asyncio.sleep(max(wait, 0.1))
            self.restarting += 1
            try:
                yield
            finally:
                self.restarting -= 1

    @contextlib.asynccontextmanager
    async def at_next_kill(self, worker: WorkerProcess) -> AsyncIterator[bool]:
        """For a refund that must be in flight when ``worker`` is killed: the body runs (sends the
        refund) when the worker's next kill on the run's clock is due, and the kill follows the
        body. So a thousand payments' refund kills add no kills of their own: each rides the
        paced one (several refunds may ride the same kill). Yields True when the body must kill
        the worker itself (no clock: --worker-kill-every 0), inside its turn."""
        if not self._running:
            async with self.killing(worker):
                yield True
            return
        rider = _Rider()
        self._riders[worker.name].append(rider)
        await rider.go.wait()
        try:
            yield False
        finally:
            rider.ready.set()

    async def _kill_worker(self, worker: WorkerProcess, rng: random.Random) -> None:
        async with self.killing(worker):
            riders, self._riders[worker.name] = self._riders[worker.name], []
            for rider in riders:
                rider.go.set()
            if riders:  # their refunds are being sent: kill once they are in flight
                await asyncio.wait([asyncio.create_task(r.ready.wait()) for r in riders],
                                   timeout=30)
            self.count("process: worker kill -9")
            await worker.restart(down_for=rng.uniform(0.2, 1.5))

    async def _restart_server(self, rng: random.Random) -> None:
        self.server_up.clear()
        try:
            while self.restarting:
                await asyncio.sleep(0.1)
            self.count("process: dev server restart (persistence file)")
            started = time.monotonic()
            await self.server.stop()
            await asyncio.sleep(0.5)
            self.server.restarts += 1
            await self.server.start()
            self.server.down_seconds += time.monotonic() - started
        finally:
            self.server_up.set()

    async def _restart_endpoint(self, rng: random.Random) -> None:
        await self.server_up.wait()
        self.count("process: endpoint kill -9 while delivering")
        self.restarting += 1
        try:
            await self.endpoint.restart(down_for=rng.uniform(0.2, 1.0))
        finally:
            self.restarting -= 1

    def summary(self) -> list[str]:
        """One line per process kind: how often it went down and how long it was up."""
        span = max(1e-9, (self.stopped or time.monotonic()) - self.started)
        p, lines = self.pacing, []
        if self.workers:
            down = [w.down_seconds for w in self.workers]
            kills = sum(w.kills for w in self.workers)
            every = f"~{p.worker_kill_every:g} s, ≥ {p.worker_min_up:g} s up" \
                if p.worker_kill_every else "never"
            lines.append(f"workers: {len(self.workers)}, killed {kills} times in {span:.0f} s of "
                         f"faults (each every {every}); up "
                         + ", ".join(f"{100 * (1 - d / span):.0f}%" for d in down))
        lines.append(f"dev server: restarted {self.server.restarts} times, down "
                     f"{self.server.down_seconds:.0f} s; endpoint: killed {self.endpoint.kills} "
                     "times")
        return lines
