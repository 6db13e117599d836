"""bKash's token budget in the chaos run: the forced token expiries it may inject, and the
invariant that grant + refresh calls stay within bKash's limit, from the sandbox's own counter.

bKash allows ``token_calls_per_hour`` (2) grant/refresh calls per credential set in a rolling hour
and blocks the merchant for an hour after that (reference §3.2; the sandbox enforces it). A real
token expires once an hour; each forced expiry (the sandbox's ``expire_token`` fault) makes the
client re-grant, so a run forces at most (limit - 1) of them per rolling hour: the run's first
grant plus one re-grant is the whole budget. Injected as often as other faults, it spent the hour
within seconds and the payments behind it could not execute (issue 11).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sandbox.bkash.admin import BkashSandboxAdmin

if TYPE_CHECKING:
    from chaos.harness import Payment, Report

HOUR = 3600.0
TOKEN_EXPIRED = "bkash: token expired mid-flow"


class TokenBudget:
    """``limit``: the sandbox's token_calls_per_hour (0: no limit). ``horizon``: how long after
    its start a planned expiry may still be pending (its execute comes within the run's tail)."""

    def __init__(self, limit: int, horizon: float) -> None:
        self.limit, self.horizon = limit, horizon
        self.planned: list[float] = []  # start_at of the payments planned to force an expiry

    def fits(self, start_at: float) -> bool:
        """Planning: another forced expiry at ``start_at`` stays within (limit - 1) an hour."""
        if not self.limit:
            return True
        window = HOUR + self.horizon
        return len([t for t in self.planned if abs(start_at - t) < window]) < self.limit - 1

    def plan(self, start_at: float) -> None:
        self.planned.append(start_at)

    async def expire_at_execute(self, bkash: BkashSandboxAdmin, p: Payment,
                                report: Report) -> bool:
        """Make the token expire at ``p``'s execute, if the sandbox's counter has room for the
        re-grant (and for the first grant, when there has been none); otherwise ``p`` runs
        without a fault and is counted so. True when the fault is set."""
        calls = (await bkash.stats())["token_calls"]
        recent = [t for t in calls if t > time.time() - HOUR]  # the sandbox's clock: time.time
        needed = len(recent) + 1 + (0 if calls else 1)
        if self.limit and needed > self.limit:
            report.injected[p.fault] -= 1
            p.fault = "bkash: none"
            report.injected[p.fault] += 1
            p.notes.append(f"token expiry not forced: {len(recent)} token calls this hour")
            return False
        await bkash.add_fault("execute", "expire_token", match={"merchantInvoiceNumber": p.key})
        return True

    async def check(self, bkash: BkashSandboxAdmin, report: Report) -> None:
        """The invariant, from the sandbox's own counter; its figures go in the report."""
        stats = await bkash.stats()
        report.token_calls = (
            f"bKash token calls: grant {stats['grant_calls']}, refresh {stats['refresh_calls']}; "
            f"at most {most_in_an_hour(stats['token_calls'])} in a rolling hour (bKash allows "
            f"{self.limit or 'any number'}); forced expiries {report.injected[TOKEN_EXPIRED]}")
        report.violations.extend(token_budget_violations(stats, self.limit))


def most_in_an_hour(calls: list[float]) -> int:
    """The most calls in any rolling hour (each hour starting at a call)."""
    calls = sorted(calls)
    return max((sum(1 for u in calls if t <= u < t + HOUR) for t in calls), default=0)


def token_budget_violations(stats: dict, limit: int) -> list[str]:
    """``stats``: the bKash sandbox's GET /admin/stats (``token_calls``: when each grant/refresh
    it counted arrived, refused ones included; ``blocked_until``)."""
    out = []
    most = most_in_an_hour(stats["token_calls"])
    if limit and most > limit:
        out.append(f"bKash token budget: {most} grant/refresh calls in one rolling hour, bKash "
                   f"allows {limit} (calls at {sorted(stats['token_calls'])})")
    if stats.get("blocked_until") is not None:
        out.append(f"bKash token budget: the merchant is blocked until {stats['blocked_until']}")
    return out
