"""One bKash token and one grant/refresh budget per credential set for every host: a Redis store.

bKash counts grant/refresh calls per credential set, not per process or host, and blocks after two
an hour (../shared/reference/bkash-api.md §3.2); a file is shared by one host's processes only, so
a second host would double the calls. Redis is "the suggested option for distributed or
multi-process systems" (production.md §6, pybkash docs/token-caching.md).

Layout (one credential set = one ``<prefix>:<credential id>``):

* ``…:state`` — the :class:`TokenState` as JSON (the token, its expiry, the refresh token and the
  times of the grant/refresh calls of the last hour). It is a secret: protect the Redis server
  (README "Several hosts").
* ``…:lease`` — the renewal lease: ``SET NX PX`` with the holder's ``host:pid:nonce``; released by
  a compare-and-delete script, so a holder whose lease ran out never deletes its successor's. A
  holder killed mid-renewal simply lets it expire; the call it was sending is already in the state
  (the manager writes it ahead), so the next holder knows the budget it left.

Redis unreachable: the per-host file store takes over (logged once), which keeps the budget as far
as this host can know it; every save is mirrored to the file so the switch starts from the latest
state, and Redis is tried again every ``retry_seconds``. Loads merge both (newest token, every call
either saw), so nothing learnt during an outage is forgotten when Redis returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from providers.bkash_tokens import FileTokenStore, TokenState, TokenStore, TokenStoreBusy

log = logging.getLogger("providers.bkash")

_RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end
return 0
"""
DEFAULT_PREFIX = "bkash-temporal-payments:token"
_SEALED = b"sealed1:"


def describe_redis_url(url: str) -> str:
    """The URL without its password, for log lines and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or ''}"


class RedisTokenStore(TokenStore):
    """The token, its expiry and the budget of one credential set in Redis, shared by every host.

    ``url`` is a redis:// or rediss:// (TLS) URL; a user name and password go in it as usual
    (``rediss://user:password@host:6380/2``). ``lease_seconds`` must outlast one token call (the
    provider timeout) so that a live holder never loses its lease mid-call.
    """

    def __init__(self, url: str, credential_id: str, *, fallback: FileTokenStore,
                 lease_seconds: float = 45.0, prefix: str = DEFAULT_PREFIX,
                 op_timeout: float = 2.0, retry_seconds: float = 5.0,
                 seal: Callable[[bytes], bytes] | None = None,
                 unseal: Callable[[bytes], bytes] | None = None) -> None:
        import redis.asyncio as aioredis  # only processes configured for Redis need the package

        self._errors: tuple[type[BaseException], ...] = (
            aioredis.ConnectionError, aioredis.TimeoutError, OSError, asyncio.TimeoutError)
        self._redis = aioredis.from_url(url, socket_timeout=op_timeout,
                                        socket_connect_timeout=op_timeout,
                                        health_check_interval=30)
        self._where = describe_redis_url(url)
        self._state_key = f"{prefix}:{credential_id}:state"
        self._lease_key = f"{prefix}:{credential_id}:lease"
        self._lease_ms = int(lease_seconds * 1000)
        self._fallback = fallback
        self._retry_seconds = retry_seconds
        self._down_since: float | None = None
        self._release = self._redis.register_script(_RELEASE)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Encryption at rest (the payload key, when the worker has one): the record holds the
        # token and the refresh token. A sealed record starts with _SEALED.
        self._seal, self._unseal = seal, unseal

    @property
    def lease_key(self) -> str:
        return self._lease_key

    @property
    def using_fallback(self) -> bool:
        return self._down_since is not None

    # -- availability --------------------------------------------------------------------------

    def _redis_worth_trying(self) -> bool:
        return self._down_since is None or \
            time.monotonic() - self._down_since >= self._retry_seconds

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            log.warning("bKash token store: Redis at %s is unreachable (%s); using this host's "
                        "file store until it returns", self._where, type(exc).__name__)
        self._down_since = time.monotonic()

    def _came_back(self) -> None:
        if self._down_since is not None:
            log.warning("bKash token store: Redis at %s is reachable again", self._where)
            self._down_since = None

    # -- the store -------------------------------------------------------------------------------

    async def load(self) -> TokenState | None:
        local = self._fallback.load_now()
        if not self._redis_worth_trying():
            return local
        try:
            raw = await self._redis.get(self._state_key)
        except self._errors as exc:
            self._went_down(exc)
            return local
        self._came_back()
        shared = None
        if raw:
            try:
                if raw.startswith(_SEALED):
                    if self._unseal is None:
                        raise ValueError("sealed, and this process has no payload key")
                    raw = self._unseal(raw[len(_SEALED):])
                shared = TokenState.model_validate_json(raw)
            except Exception as exc:  # noqa: BLE001 - unreadable is "no shared state", logged
                log.warning("bKash token store: the state in Redis cannot be read (%s); using "
                            "this host's record", type(exc).__name__)
        if shared is None:
            return local
        return shared.merged(local)

    async def save(self, state: TokenState) -> None:
        self._fallback.save_now(state)  # the host's copy, for an outage
        if not self._redis_worth_trying():
            return
        try:
            # Kept a day past its last renewal: long enough for the budget (an hour) and the
            # token, short enough that an abandoned credential set's secret does not linger.
            record = state.model_dump_json().encode()
            if self._seal is not None:
                record = _SEALED + self._seal(record)
            await self._redis.set(self._state_key, record, ex=24 * 3600)
        except self._errors as exc:
            self._went_down(exc)
            return
        self._came_back()

    @contextlib.asynccontextmanager
    async def locked(self, wait: float | None = None) -> AsyncIterator[None]:
        if not self._redis_worth_trying():
            async with self._fallback.locked(wait):
                yield
            return
        nonce = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        try:
            acquired = await self._acquire(nonce, wait)
        except self._errors as exc:
            self._went_down(exc)
            async with self._fallback.locked(wait):
                yield
            return
        self._came_back()
        if not acquired:
            raise TokenStoreBusy("another process holds the renewal lease")
        try:
            yield
        finally:
            with contextlib.suppress(*self._errors):
                await self._release(keys=[self._lease_key], args=[nonce])

    async def _acquire(self, nonce: str, wait: float | None) -> bool:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            if await self._redis.set(self._lease_key, nonce, nx=True, px=self._lease_ms):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def lease_holder(self) -> str | None:
        """Who holds the renewal lease (``host:pid:nonce:nonce``), for operators and tests."""
        value = await self._redis.get(self._lease_key)
        return value.decode() if value else None

    async def close(self) -> None:
        with contextlib.suppress(*self._errors):
            await self._redis.aclose()
