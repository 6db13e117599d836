"""Where the pack's calls go: the local bKash sandbox golive starts itself (the default), or the
bKash credentials the worker is configured with (BKASH_*), with a person approving on bKash's page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from providers.bkash_config import PRODUCTION_BASE_URL, BkashCredentials, BkashPaths

# bKash's public sandbox wallets (bkash-api.md §13): a regular one, and the two execute declines.
REGULAR_WALLET = "01770618575"
INSUFFICIENT_BALANCE_WALLET = "01823074817"
DEBIT_BLOCKED_WALLET = "01823074818"
SANDBOX_OTP, SANDBOX_PIN = "123456", "12121"


class GoliveError(Exception):
    """Bad input or a run that cannot go on; the message names the flag or setting and the fix."""


class Customer(Protocol):
    """The customer on bKash's hosted page; answers the status bKash's redirect carried and the
    redirect itself (None where only a person saw it)."""

    async def approve(self, bkash_url: str, wallet: str, why: str) -> tuple[str, str | None]: ...

    async def fail_pin(self, bkash_url: str, why: str) -> tuple[str, str | None]: ...


@dataclass
class Target:
    description: str
    creds: BkashCredentials
    paths: BkashPaths
    timeout: float
    refresh_after: float
    callback_base_url: str
    link_secret: bytes
    customer: Customer
    # The local sandbox's admin (fault injection); None against bKash's own sandbox.
    sandbox_admin_url: str | None = None


class ScriptedCustomer:
    """sandbox.bkash.customer.BkashCustomer on the local sandbox's page, over its own client so its
    page visits stay out of the merchant's recorded traffic."""

    def __init__(self, browser: httpx.AsyncClient) -> None:
        from sandbox.bkash.customer import BkashCustomer

        self._customer = BkashCustomer(browser)

    async def approve(self, bkash_url: str, wallet: str, why: str) -> tuple[str, str | None]:
        journey = await self._customer.approve(bkash_url, wallet=wallet)
        return journey.redirect_status or "none", journey.callback_url_hit

    async def fail_pin(self, bkash_url: str, why: str) -> tuple[str, str | None]:
        journey = await self._customer.fail_pin(bkash_url, wallet=REGULAR_WALLET)
        return journey.redirect_status or "none", journey.callback_url_hit


class PersonAtTheKeyboard:
    """Against bKash's own sandbox only a person can act on bKash's page: golive prints the
    bkashURL and what to enter, and waits for Enter."""

    def __init__(self) -> None:
        self.asked = 0

    async def approve(self, bkash_url: str, wallet: str, why: str) -> tuple[str, str | None]:
        await self._ask(why, bkash_url, f"wallet {wallet}, OTP {SANDBOX_OTP}, PIN {SANDBOX_PIN}")
        return "success", None

    async def fail_pin(self, bkash_url: str, why: str) -> tuple[str, str | None]:
        await self._ask(why, bkash_url, f"wallet {REGULAR_WALLET}, OTP {SANDBOX_OTP}, then a "
                        f"WRONG PIN (e.g. 00000) three times")
        return "failure", None

    async def _ask(self, why: str, url: str, enter: str) -> None:
        self.asked += 1
        print(f"\n[golive] customer step {self.asked}: {why}\n"
              f"  open this in a browser: {url}\n"
              f"  enter: {enter}\n"
              "  then press Enter here once bKash's page has sent the browser back "
              "(Ctrl-C stops the run)", flush=True)
        if not await _read_line():
            raise GoliveError("--bkash-sandbox-credentials: a person must act on bKash's page and "
                              "press Enter, but standard input is closed; run it in a terminal")


async def _read_line() -> bool:
    """Wait for Enter without a thread (a thread blocked in input() would hold the process open
    after Ctrl-C); False at the end of input."""
    if sys.stdin is None or sys.stdin.closed:
        return False
    fd = sys.stdin.fileno()
    if os.isatty(fd):
        # An Enter pressed while golive was still calling bKash must not skip the next step.
        termios.tcflush(fd, termios.TCIFLUSH)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()

    def readable() -> None:
        data = os.read(fd, 4096)
        if not done.done() and (not data or b"\n" in data):
            done.set_result(bool(data))

    try:
        loop.add_reader(fd, readable)
    except OSError:
        # A file or /dev/null: epoll refuses it, and reading it never blocks.
        return bool(sys.stdin.readline())
    try:
        return await done
    finally:
        loop.remove_reader(fd)


def _merchant_return_page() -> Starlette:
    """Where the local sandbox sends the customer's browser back (callbackURL): golive's payments
    are not workflows, so nothing but a page is needed there."""

    async def back(request) -> PlainTextResponse:
        return PlainTextResponse("golive: the customer is back at the merchant")

    return Starlette(routes=[Route("/bkash/return/{rest:path}", back, methods=["GET"])])


@contextlib.asynccontextmanager
async def local_sandbox() -> AsyncIterator[Target]:
    """The local bKash sandbox with its built-in credentials, served on loopback as tests/e2e do."""
    from embedded import serve_asgi
    from sandbox.bkash import BkashSandboxConfig, create_app

    config = BkashSandboxConfig()
    async with serve_asgi(create_app(config)) as sandbox_url, \
            serve_asgi(_merchant_return_page()) as merchant_url, \
            httpx.AsyncClient(timeout=30) as browser:
        creds = BkashCredentials(base_url=f"{sandbox_url}/{config.api_version}",
                                 app_key=config.app_key, app_secret=config.app_secret,
                                 username=config.username, password=config.password)
        yield Target(description=f"the local bKash sandbox (sandbox/bkash) at {creds.base_url}",
                     creds=creds, paths=BkashPaths(), timeout=30.0, refresh_after=50 * 60,
                     callback_base_url=merchant_url, link_secret=secrets.token_bytes(32),
                     customer=ScriptedCustomer(browser), sandbox_admin_url=sandbox_url)


@contextlib.asynccontextmanager
async def configured_bkash() -> AsyncIterator[Target]:
    """The worker's default bKash account (BKASH_*, PAYMENTS_CALLBACK_BASE_URL, PAYMENTS_LINK_SECRET
    via config.load_settings), refused when it points at production: the pack moves money."""
    from config import load_settings

    settings = load_settings()
    creds = settings.bkash
    if urlsplit(creds.base_url).hostname == urlsplit(PRODUCTION_BASE_URL).hostname:
        raise GoliveError(f"--bkash-sandbox-credentials: BKASH_BASE_URL is bKash's production host "
                          f"({creds.base_url}); the go-live pack is made in bKash's sandbox: set "
                          "BKASH_BASE_URL=https://tokenized.sandbox.bka.sh/v1.2.0-beta and the "
                          "sandbox credentials bKash issued")
    # golive keeps its own token (not the worker's token store), so bKash's limit of two token
    # calls an hour per credential set is the person's to respect.
    print(f"[golive] calling bKash at {creds.base_url} as {creds.username}: one grant and one "
          "refresh token call, the two bKash allows an hour for these credentials, so no worker "
          "may use them now; a person acts on bKash's page for each payment", flush=True)
    yield Target(description=f"bKash at {creds.base_url} (the configured BKASH_* credentials)",
                 creds=creds, paths=settings.bkash_paths, timeout=settings.bkash_timeout_seconds,
                 refresh_after=settings.bkash_token_refresh_after_seconds,
                 callback_base_url=settings.callback_base_url,
                 link_secret=settings.link_secret.get_secret_value().encode(),
                 customer=PersonAtTheKeyboard())
