"""bKash's token budget in the chaos run: the forced token expiries it may inject, the spent-budget
mode, and the invariant that grant + refresh calls stay within bKash's limit, from the sandbox's
own counter.

bKash allows ``token_calls_per_hour`` (2) grant/refresh calls per credential set in a rolling hour
and blocks the merchant for an hour after that (reference §3.2; the sandbox enforces it). A real
token expires once an hour; each forced expiry (the sandbox's ``expire_token`` fault) makes the
client re-grant, so a run forces at most (limit - 1) of them per rolling hour: the run's first
grant plus one re-grant is the whole budget. Injected as often as other faults, it spent the hour
within seconds and the payments behind it could not execute (issue 11).

The spent-budget mode (``Pacing.token_budget_window``, ``--token-budget-spent SECONDS``) makes
that case happen on purpose, within budget: the sandbox's hour and the worker's are SECONDS long
(BKASH_TOKEN_BUDGET_WINDOW_SECONDS), and a payment dealt ``BUDGET_SPENT`` has its token rejected
at execute while the window's calls are spent (its own create's rejected token spends the last
call, when one is left). The worker must refuse the re-grant itself and send the execute once the
window lets it; the approval invariant then holds the customer who approved to an authorization.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from temporalio.client import Client

from merchant_client import payment_state
from sandbox.bkash.admin import BkashSandboxAdmin

if TYPE_CHECKING:
    from chaos.harness import Payment, Report

HOUR = 3600.0
TOKEN_EXPIRED = "bkash: token expired mid-flow"
BUDGET_SPENT = "bkash: token rejected, budget spent"
TOKEN_FAULTS = (TOKEN_EXPIRED, BUDGET_SPENT)
# In the spent-budget mode BUDGET_SPENT is dealt this many times per deck of bKash faults (it
# replaces TOKEN_EXPIRED, whose re-grant at execute would race its spending at the create).
BUDGET_SPENT_CARDS = 3
# The workflow's timeline event of an execute not sent for want of a token (workflows/bkash.py).
WAITED = "execute not sent yet (no bKash token)"
T = TypeVar("T")


class TokenBudget:
    """``limit``: the sandbox's token_calls_per_hour (0: no limit). ``horizon``: how long after
    its start a planned expiry may still be pending (its execute comes within the run's tail).
    ``window``: bKash's rolling hour (shorter in the spent-budget mode)."""

    def __init__(self, limit: int, horizon: float, window: float = HOUR) -> None:
        self.limit, self.horizon, self.window = limit, horizon, window
        self.planned: list[float] = []  # start_at of the payments planned to force an expiry
        self._spending = asyncio.Lock()  # one BUDGET_SPENT payment spends the window at a time

    def fits(self, start_at: float) -> bool:
        """Planning: another forced expiry at ``start_at`` stays within (limit - 1) an hour."""
        if not self.limit:
            return True
        window = self.window + self.horizon
        return len([t for t in self.planned if abs(start_at - t) < window]) < self.limit - 1

    def plan(self, start_at: float) -> None:
        self.planned.append(start_at)

    async def _room(self, bkash: BkashSandboxAdmin) -> tuple[int, int]:
        """(calls this window, calls a new token needs: +1 when the run has not granted yet)."""
        calls = (await bkash.stats())["token_calls"]
        recent = [t for t in calls if t > time.time() - self.window]  # the sandbox's clock
        return len(recent), len(recent) + 1 + (0 if calls else 1)

    async def expire_at_execute(self, bkash: BkashSandboxAdmin, p: Payment,
                                report: Report) -> bool:
        """Make the token expire at ``p``'s execute, if the sandbox's counter has room for the
        re-grant (and for the first grant, when there has been none); otherwise ``p`` runs
        without a fault and is counted so. True when the fault is set."""
        recent, needed = await self._room(bkash)
        if self.limit and needed > self.limit:
            report.injected[p.fault] -= 1
            p.fault = "bkash: none"
            report.injected[p.fault] += 1
            p.notes.append(f"token expiry not forced: {recent} token calls this hour")
            return False
        await bkash.add_fault("execute", "expire_token", match={"merchantInvoiceNumber": p.key})
        return True

    async def spend_then_reject(self, bkash: BkashSandboxAdmin, p: Payment,
                                start: Callable[[], Awaitable[T]]) -> T:
        """Start ``p`` (``start``) with the window's budget spent by its execute: while a call is
        left, ``p``'s create has its token rejected too, so the worker re-grants with the last
        call (one payment at a time, so two never spend the same call); then ``p``'s execute
        has its token rejected with nothing left to re-grant with."""
        await bkash.add_fault("execute", "expire_token", match={"merchantInvoiceNumber": p.key})
        async with self._spending:
            recent, needed = await self._room(bkash)
            if not self.limit or needed > self.limit:
                p.notes.append(f"token budget already spent at the start ({recent} calls)")
            else:
                await bkash.add_fault("create", "expire_token",
                                      match={"merchantInvoiceNumber": p.key})
                p.notes.append(
                    f"the create's rejected token spends the window's last call ({recent} calls)"
                    if needed == self.limit else f"the window had room for {self.limit - recent}"
                    f" calls ({recent} made): the create's rejected token spends one, the "
                    "execute's the other (no wait)")
                return await start()
        return await start()

    async def check(self, bkash: BkashSandboxAdmin, report: Report) -> None:
        """The invariant, from the sandbox's own counter; its figures go in the report."""
        stats = await bkash.stats()
        span = "hour" if self.window == HOUR else f"{self.window:g} s window (the sandbox's hour)"
        report.token_calls = (
            f"bKash token calls: grant {stats['grant_calls']}, refresh {stats['refresh_calls']}; "
            f"at most {most_in_an_hour(stats['token_calls'], self.window)} in a rolling {span} "
            f"(bKash allows {self.limit or 'any number'}); forced expiries "
            f"{report.injected[TOKEN_EXPIRED]}")
        report.violations.extend(token_budget_violations(stats, self.limit, self.window))
        if self.window != HOUR or report.token_waits:
            report.token_waits_line = token_waits_line(report)


async def token_wait(client: Client, p: Payment, stage: str, report: Report) -> None:
    """Whether ``p``'s execute met the spent budget and waited for a token (its timeline says
    so), and for how long; counted in the report with the stage the payment ended in. Whether a
    customer who approved got the authorization is the approval invariant's (every payment)."""
    try:
        timeline = (await asyncio.wait_for(payment_state(client, p.key), 30)).timeline
    except Exception as exc:  # noqa: BLE001
        report.violations.append(f"{p.key}: no state to tell whether it waited for a token "
                                 f"({type(exc).__name__}: {exc})")
        return
    waits = [i for i, e in enumerate(timeline) if WAITED in e.event]
    if not waits:
        return
    after = timeline[waits[-1] + 1:] or timeline[-1:]
    report.token_waits[p.key] = (stage, (after[0].at - timeline[waits[0]].at).total_seconds())


def token_waits_line(report: Report) -> str:
    waits = report.token_waits
    ended: dict[str, int] = {}
    for stage, _ in waits.values():
        ended[stage] = ended.get(stage, 0) + 1
    longest = max((s for _, s in waits.values()), default=0.0)
    return (f"bKash token budget spent: {len(waits)} payments' execute waited for a token (up to "
            f"{longest:.0f} s), then ended " + (", ".join(f"{k} {v}" for k, v in
                                                      sorted(ended.items())) or "-"))


def most_in_an_hour(calls: list[float], window: float = HOUR) -> int:
    """The most calls in any rolling hour (``window``), each starting at a call."""
    calls = sorted(calls)
    return max((sum(1 for u in calls if t <= u < t + window) for t in calls), default=0)


def token_budget_violations(stats: dict, limit: int, window: float = HOUR) -> list[str]:
    """``stats``: the bKash sandbox's GET /admin/stats (``token_calls``: when each grant/refresh
    it counted arrived, refused ones included; ``blocked_until``). ``window``: the rolling hour."""
    out = []
    most = most_in_an_hour(stats["token_calls"], window)
    if limit and most > limit:
        span = "hour" if window == HOUR else f"{window:g} s window"
        out.append(f"bKash token budget: {most} grant/refresh calls in one rolling {span}, "
                   f"bKash allows {limit} (calls at {sorted(stats['token_calls'])})")
    if stats.get("blocked_until") is not None:
        out.append(f"bKash token budget: the merchant is blocked until {stats['blocked_until']}")
    return out
