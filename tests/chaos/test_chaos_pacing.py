"""The chaos run's pacing and its new invariants, without a server: process faults run on clocks
(a worker is up long enough between kills, whatever the payment count), forced token expiries stay
within bKash's hourly budget, the budgets cover the configured windows, and the approval and
token-budget invariants fire on the breaches they exist for."""

from __future__ import annotations

import asyncio
import time

from chaos.harness import Chaos
from chaos.invariants import approval_violations
from chaos.pacing import Budgets, Pacing, ProcessFaults
from chaos.tokens import (
    BUDGET_SPENT,
    TOKEN_EXPIRED,
    most_in_an_hour,
    token_budget_violations,
)


def planned(tmp_path, count: int, pacing: Pacing | None = None):
    chaos = Chaos(20261201, count, tmp_path, pacing=pacing)
    return chaos, [chaos._plan(i) for i in range(count)]


def test_a_thousand_payments_force_one_token_expiry_an_hour(tmp_path):
    _, plans = planned(tmp_path, 1000)
    forced = [p for p in plans if p.fault == TOKEN_EXPIRED]
    assert len(forced) == 1
    # The other faults are all still dealt, as evenly as before.
    kinds = {p.fault for p in plans}
    assert len(kinds) == 18
    # A run spread over three hours forces one an hour (the first grant + one re-grant each).
    _, slow = planned(tmp_path, 1000, Pacing(start_rate=1000 / (3 * 3600)))
    starts = sorted(p.start_at for p in slow if p.fault == TOKEN_EXPIRED)
    assert 1 <= len(starts) <= 3
    assert all(b - a > 3600 for a, b in zip(starts, starts[1:]))


def test_budgets_cover_every_configured_window():
    for window in (15.0, 60.0, 600.0):
        pacing = Pacing(customer_window=window)
        b = Budgets.of(pacing, provider_timeout=2.0)
        assert b.start > window and b.stage > window
        # Three payments' approval windows (a lost execute creates again), the token wait, the
        # hold deadline; Monetix: a clarification and a transaction-ID window.
        assert b.end_wait > 4 * window + pacing.hold_deadline
        assert b.end_wait > 2 * window + pacing.instructions_wait + pacing.final_callback_wait


def test_the_starts_are_spread_by_rate_not_by_count(tmp_path):
    _, plans = planned(tmp_path, 600, Pacing(start_rate=3.0))
    assert max(p.start_at for p in plans) <= 200.0
    assert max(p.start_at for p in plans) > 190.0


class FakeProcess:
    """Restarting takes ``restart_takes`` seconds; remembers when it was down."""

    def __init__(self, name: str, restart_takes: float) -> None:
        self.name, self.restart_takes = name, restart_takes
        self.kills = self.restarts = 0
        self.down_seconds = 0.0
        self.up_since = time.monotonic()
        self.uptimes: list[float] = []
        self.kill_turn = asyncio.Lock()

    async def restart(self, down_for: float = 0.0) -> None:
        self.uptimes.append(time.monotonic() - self.up_since)
        self.kills += 1
        started = time.monotonic()
        await asyncio.sleep(self.restart_takes)
        self.down_seconds += time.monotonic() - started
        self.up_since = time.monotonic()

    async def stop(self) -> None: ...

    async def start(self) -> None:
        await asyncio.sleep(self.restart_takes)


async def test_each_worker_is_up_its_minimum_between_kills():
    # The numbers scaled down 10x: kills "every 0.16 s" while a restart takes 0.165 s.
    workers = [FakeProcess(f"worker-{i}", 0.165) for i in (1, 2)]
    server, endpoint = FakeProcess("server", 0.05), FakeProcess("endpoint", 0.05)
    pacing = Pacing(workers=2, worker_kill_every=0.16, worker_min_up=0.8,
                    server_restart_every=1.0, endpoint_restart_every=0.5)
    counted = []
    faults = ProcessFaults(1, pacing, 3.0, server, endpoint, workers, counted.append)
    done = asyncio.Event()
    task = asyncio.create_task(faults.run(done))
    await asyncio.sleep(4.0)
    done.set()
    await task
    for w in workers:
        assert w.kills >= 2
        assert min(w.uptimes) >= 0.8 - 0.05, w.uptimes
        assert w.down_seconds < 0.3 * 4.0  # up most of the time, not 10.8 s of 178
    assert counted.count("process: worker kill -9") == sum(w.kills for w in workers)
    assert "process: dev server restart (persistence file)" in counted
    assert "process: endpoint kill -9 while delivering" in counted
    assert faults.summary()[0].startswith("workers: 2, killed")


def payment(pid: str, page: str | None, status: str = "Initiated",
            failure: str | None = None) -> dict:
    return {"payment_id": pid, "page_outcome": page, "status": status, "failure_code": failure}


def test_an_approving_customer_ends_with_an_authorization():
    # Approved and authorized (captured or voided): nothing to say.
    assert approval_violations("K", [payment("P1", "success", "Completed")], 1, "CAPTURED", "") == []
    assert approval_violations("K", [payment("P1", "success", "Cancelled")], 1, "VOIDED", "") == []
    # Approved, the execute lost before bKash saw it, approved again on the new payment.
    assert approval_violations("K", [payment("P1", "success"),
                                     payment("P2", "success", "Completed")], 1, "CAPTURED", "") == []
    # Never approved (cancelled, abandoned): no authorization needed.
    assert approval_violations("K", [payment("P1", "cancel")], 0, "CANCELLED", "") == []
    assert approval_violations("K", [payment("P1", None)], 0, "EXPIRED", "") == []
    # bKash declined (insufficient balance): DECLINED, no authorization.
    declined = payment("P1", "success", "Failed", "2023")
    assert approval_violations("K", [declined], 0, "DECLINED", "") == []
    # The breaches: approved but EXPIRED (the token case), declined but not DECLINED.
    [v] = approval_violations("K", [payment("P1", "success")], 0, "EXPIRED",
                              "execute was never sent: no bKash token")
    assert "approved P1 (Initiated)" in v and "EXPIRED" in v and "no bKash token" in v
    [v] = approval_violations("K", [declined], 0, "EXPIRED", "")
    assert "bKash declined P1 (2023)" in v


def test_the_token_budget_invariant_counts_rolling_hours():
    t = 1_800_000_000.0
    assert most_in_an_hour([t, t + 10, t + 3599]) == 3
    assert most_in_an_hour([t, t + 10, t + 3600]) == 2
    assert token_budget_violations({"token_calls": [t, t + 10], "blocked_until": None}, 2) == []
    assert token_budget_violations({"token_calls": [t, t + 4000, t + 8000],
                                    "blocked_until": None}, 2) == []
    [v] = token_budget_violations({"token_calls": [t, t + 1, t + 2], "blocked_until": None}, 2)
    assert "3 grant/refresh calls in one rolling hour" in v
    assert len(token_budget_violations({"token_calls": [t, t + 1, t + 2],
                                        "blocked_until": t + 3600}, 2)) == 2
    assert token_budget_violations({"token_calls": [t, t + 1, t + 2], "blocked_until": None},
                                   0) == []


def test_the_spent_budget_mode_deals_rejected_tokens_to_approving_customers(tmp_path):
    chaos, plans = planned(tmp_path, 200, Pacing(customer_window=15.0, token_budget_window=30.0))
    spent = [p for p in plans if p.fault == BUDGET_SPENT]
    # It replaces the forced expiry (whose re-grant at execute would race the spending), dealt
    # three times a deck: ~3 of 13 bKash payments; each customer approves.
    assert not [p for p in plans if p.fault == TOKEN_EXPIRED]
    assert 15 <= len(spent) <= 30 and {p.customer for p in spent} == {"approve"}
    # The sandbox's hour and lockout, the worker's window and the payments' wait all match.
    assert chaos.bkash_cfg.token_window_seconds == chaos.bkash_cfg.lockout_seconds == 30.0
    assert chaos.tokens.window == 30.0
    chaos.server = off_server = type("Server", (), {"address": "localhost:7233"})()
    env = chaos._env("http://b", "http://m")
    assert env["BKASH_TOKEN_BUDGET_WINDOW_SECONDS"] == "30.0"
    assert chaos.pacing.token_wait > 30.0 and chaos.budgets.stage > chaos.pacing.token_wait
    # Off by default: the real hour, no window setting for the worker.
    off, _ = planned(tmp_path, 10)
    off.server = off_server
    assert off.bkash_cfg.token_window_seconds == 3600.0 and off.tokens.window == 3600.0
    assert "BKASH_TOKEN_BUDGET_WINDOW_SECONDS" not in off._env("http://b", "http://m")


def test_the_token_budget_invariant_uses_the_configured_window():
    t = 1_800_000_000.0
    assert most_in_an_hour([t, t + 10, t + 25], window=20.0) == 2
    assert token_budget_violations({"token_calls": [t, t + 10, t + 25], "blocked_until": None},
                                   2, window=20.0) == []
    [v] = token_budget_violations({"token_calls": [t, t + 10, t + 19], "blocked_until": None},
                                  2, window=20.0)
    assert "3 grant/refresh calls in one rolling 20 s window" in v


async def test_a_short_token_window_at_the_sandbox_and_the_worker_alike(monkeypatch):
    """The chaos knob end to end without servers: the worker's setting reaches its token manager,
    which refuses a third call within the window itself (the sandbox would block the merchant)
    and asks for a wait that ends when the window's first call leaves it."""
    import httpx

    import worker
    from config import load_settings
    from providers.bkash import BkashCredentials, BkashPaths
    from providers.bkash_errors import BkashTokenRateLimited
    from sandbox.bkash import BkashSandboxConfig, create_app

    now = [1_800_000_000.0]
    cfg = BkashSandboxConfig(token_window_seconds=20.0, lockout_seconds=20.0)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(create_app(cfg, clock=lambda: now[0])),
                             base_url="http://sandbox")
    creds = BkashCredentials(base_url="http://sandbox/v1.2.0-beta", app_key=cfg.app_key,
                             app_secret=cfg.app_secret, username=cfg.username,
                             password=cfg.password)
    settings = load_settings({
        "BKASH_BASE_URL": creds.base_url, "BKASH_APP_KEY": cfg.app_key,
        "BKASH_APP_SECRET": cfg.app_secret, "BKASH_USERNAME": cfg.username,
        "BKASH_PASSWORD": cfg.password, "PAYMENTS_CALLBACK_BASE_URL": "http://shop",
        "PAYMENTS_LINK_SECRET": "x" * 32, "BKASH_TOKEN_CACHE_FILE": "",
        "BKASH_TOKEN_BUDGET_WINDOW_SECONDS": "20"})
    assert settings.bkash_token_budget_window_seconds == 20.0
    tokens = worker.bkash_client(settings, creds, http, BkashPaths()).tokens
    monkeypatch.setattr(tokens, "_clock", lambda: now[0])
    first = await tokens.token()
    now[0] += 5
    second = await tokens.replace(first)  # the budget's second call
    now[0] += 5
    try:
        await tokens.replace(second)
        raise AssertionError("a third token call within the window was sent")
    except BkashTokenRateLimited as err:
        # 10 s until the first call leaves the 20 s window, plus the 1 % margin (bKash counts arrivals)
        assert err.retry_after is not None and 10 <= err.retry_after.total_seconds() <= 10.3
    now[0] += 10.5  # the first call has left the window
    assert await tokens.replace(second) not in (first, second)
    stats = (await http.get("/admin/stats")).json()
    assert stats["blocked_until"] is None and len(stats["token_calls"]) == 3
    assert token_budget_violations(stats, 2, window=20.0) == []
    # The same three calls within bKash's real hour would have been one too many.
    assert token_budget_violations(stats, 2) != []
    await http.aclose()


async def test_a_refund_kill_rides_the_workers_next_paced_kill():
    worker = FakeProcess("worker", 0.05)
    server, endpoint = FakeProcess("server", 0.05), FakeProcess("endpoint", 0.05)
    pacing = Pacing(worker_kill_every=0.5, worker_min_up=0.3, server_restart_every=0,
                    endpoint_restart_every=0)
    faults = ProcessFaults(2, pacing, 2.0, server, endpoint, [worker], lambda kind: None)
    done = asyncio.Event()
    task = asyncio.create_task(faults.run(done))
    seen = []

    async def refund_in_flight():
        async with faults.at_next_kill(worker) as kill_it_myself:
            seen.append((worker.kills, kill_it_myself))
            await asyncio.sleep(0.1)  # the refund is being sent: the kill waits for it

    await asyncio.gather(refund_in_flight(), refund_in_flight())
    await asyncio.sleep(0.2)
    done.set()
    await task
    # Both refunds rode one kill of the clock (none of their own), which came after them.
    assert seen == [(seen[0][0], False)] * 2
    assert worker.kills >= seen[0][0] + 1
    assert min(worker.uptimes) >= 0.3 - 0.05
