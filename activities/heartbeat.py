"""Heartbeats while a provider call is pending (issue 14 §2, recovery).

A worker that dies mid-call would otherwise leave its attempt to the start-to-close timeout (up to
3 × the provider timeout + 5 s); with a heartbeat timeout (workflows/: ``PROVIDER_HEARTBEAT``) the
server gives the attempt up within seconds and the retry runs on a live worker. The retry asks the
provider first wherever the call moves money (capture, void, refund) and execute is never retried
(a lost execute is resolved by query), so a faster retry never sends a money-moving call twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from temporalio import activity

P = ParamSpec("P")
T = TypeVar("T")
# Sent while the call is pending: "this attempt may have reached the provider", which is also what
# the next attempt assumes when the details say nothing else (activities/bkash.py _ALL_UNSENT).
IN_FLIGHT = {"provider_call_in_flight": True}


def heartbeating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Heartbeat every fifth of the heartbeat timeout while ``fn`` runs (the SDK sends at most one
    per 0.8 × timeout); nothing when the workflow set no heartbeat timeout."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        timeout = activity.info().heartbeat_timeout
        if not timeout:
            return await fn(*args, **kwargs)

        async def beat() -> None:
            while True:
                activity.heartbeat(IN_FLIGHT)
                await asyncio.sleep(timeout.total_seconds() / 5)

        beating = asyncio.create_task(beat())
        try:
            return await fn(*args, **kwargs)
        finally:
            beating.cancel()

    return run
