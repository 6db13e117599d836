"""One bKash token and one grant/refresh budget per credential set for every host: a Redis store.

bKash counts grant/refresh calls per credential set, not per process or host, and blocks after two
an hour (../shared/reference/bkash-api.md §3.2); a file is shared by one host's processes only, so
a second host would double the calls. Redis is "the suggested option for distributed or
multi-process systems" (production.md §6, pybkash docs/token-caching.md).

Layout (one credential set = one ``<prefix>:<credential id>``):

* ``…:state`` — the :class:`TokenState` as JSON (the token, its expiry, the refresh token and the
  times of the grant/refresh calls of the last hour). It is a secret: protect the Redis server
  (README "Several hosts"). Written by a compare-and-set script against the record this process
  last read or wrote: a record changed meanwhile is merged in first, and a record this process
  cannot read (sealed with a payload key it lacks) is never overwritten.
* ``…:lease`` — the renewal lease: ``SET NX PX`` with the holder's ``host:pid:nonce``; released by
  a compare-and-delete script, so a holder whose lease ran out never deletes its successor's. A
  holder killed mid-renewal simply lets it expire; the call it was sending is already in the state
  (the manager writes it ahead), so the next holder knows the budget it left.

Redis unreachable, or refusing the store's commands (an ACL user lacking a permission, a read-only
replica, out of memory): the per-host file store takes over (logged once, naming the problem),
which keeps the budget as far as this host can know it; every save is mirrored to the file so the
switch starts from the latest state, and Redis is tried again every ``retry_seconds``. Loads merge
both (newest token, every call either saw), and what the host learnt meanwhile is written back to
Redis when it answers again, so nothing learnt during an outage is forgotten.

A record this process cannot read has an unknown budget: its calls count as spent, so the store
refuses the renewal lease (:class:`TokenBudgetUnknown`: the call is reported as not sent) while a
valid token of this host's own keeps being used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import unquote, urlsplit

from providers.bkash_tokens import (
    FileTokenStore,
    TokenBudgetUnknown,
    TokenState,
    TokenStore,
    TokenStoreBusy,
)

log = logging.getLogger("providers.bkash")

_RELEASE = """
if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) end
return 0
"""
# Set the record only if it is still the one this process last saw ("" = none).
_WRITE = """
if (redis.call("get", KEYS[1]) or "") ~= ARGV[1] then return 0 end
redis.call("set", KEYS[1], ARGV[2], "EX", ARGV[3])
return 1
"""
DEFAULT_PREFIX = "bkash-temporal-payments:token"
_SEALED = b"sealed1:"
# Kept a day past its last write: long enough for the budget (an hour) and the token, short enough
# that an abandoned credential set's secret does not linger.
_RECORD_SECONDS = 24 * 3600
_KEY_SETTINGS = "PAYMENTS_ENCRYPTION_KEYS / PAYMENTS_ENCRYPTION_KEYS_FILE"


def describe_redis_url(url: str) -> str:
    """The URL without its password, for log lines and error messages."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or ''}"


class _Unreadable(Exception):
    """The shared record is there but this process cannot read it (the reason names the fix)."""


class RedisTokenStore(TokenStore):
    """The token, its expiry and the budget of one credential set in Redis, shared by every host.

    ``url`` is a redis:// or rediss:// (TLS) URL; a user name and password go in it as usual
    (``rediss://user:password@host:6380/2?ssl_ca_certs=/etc/ssl/redis-ca.pem``). ``lease_seconds``
    must outlast one token call (the provider timeout) so that a live holder never loses its lease
    mid-call.
    """

    def __init__(self, url: str, credential_id: str, *, fallback: FileTokenStore,
                 lease_seconds: float = 45.0, prefix: str = DEFAULT_PREFIX,
                 op_timeout: float = 2.0, retry_seconds: float = 5.0,
                 seal: Callable[[bytes], bytes] | None = None,
                 unseal: Callable[[bytes], bytes] | None = None) -> None:
        import redis.asyncio as aioredis  # only processes configured for Redis need the package
        from redis import exceptions

        self._exc = exceptions
        # Every error reply counts (NOPERM, READONLY, OOM, ...): failing the activity would fix
        # nothing, while the host file keeps payments going and the budget as this host knows it.
        self._errors: tuple[type[BaseException], ...] = (
            exceptions.ConnectionError, exceptions.TimeoutError, exceptions.ResponseError,
            exceptions.InvalidResponse, OSError, asyncio.TimeoutError)
        self._redis = aioredis.from_url(url, socket_timeout=op_timeout,
                                        socket_connect_timeout=op_timeout,
                                        health_check_interval=30)
        self._where = describe_redis_url(url)
        password = urlsplit(url).password
        self._password = unquote(password) if password else None
        self._state_key = f"{prefix}:{credential_id}:state"
        self._lease_key = f"{prefix}:{credential_id}:lease"
        self._lease_ms = int(lease_seconds * 1000)
        self._fallback = fallback
        self._retry_seconds = retry_seconds
        self._down_since: float | None = None
        self._problem: str | None = None  # the kind of the problem last logged
        self._refused: str | None = None  # the operation an error reply refused
        self._unreadable: str | None = None  # why the shared record cannot be read, if it cannot
        self._seen: bytes | None = None  # the record as last read or written (b"": none)
        self._unsynced = True  # this host's file may know calls Redis does not (start, outage)
        self._release = self._redis.register_script(_RELEASE)
        self._write_script = self._redis.register_script(_WRITE)
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

    def _went_down(self, exc: BaseException, operation: str) -> None:
        kind, text = self._describe(exc)
        if kind != self._problem:
            log.warning("bKash token store: %s; using this host's file store until it works "
                        "(tried again every %g s)", text, self._retry_seconds)
            self._problem = kind
        self._refused = operation if isinstance(exc, self._exc.ResponseError) else None
        self._down_since = time.monotonic()

    def _came_back(self, operation: str) -> None:
        if self._down_since is None or self._refused not in (None, operation):
            return  # (another command working says nothing of the one Redis refused)
        if self._problem == "unreachable":
            log.warning("bKash token store: Redis at %s is reachable again", self._where)
        elif self._problem is not None:
            log.warning("bKash token store: Redis at %s accepts the store's commands again",
                        self._where)
        self._down_since = self._refused = self._problem = None

    def _describe(self, exc: BaseException) -> tuple[str, str]:
        """The kind of a failed command and a log text naming the fix: never the password."""
        e, where = self._exc, self._where
        text = str(exc)
        if self._password:
            text = text.replace(self._password, "***")
        text = text[:300]
        # A command refused inside a script comes back as a plain ResponseError with the reply.
        if isinstance(exc, e.NoPermissionError) or re.search(
                r"\bNOPERM\b|no permissions|can't run this command", text):
            return "noperm", (f"Redis at {where} refused a command: its ACL user lacks a "
                              f"permission ({text}); grant the commands README \"Several hosts\" "
                              "lists")
        if isinstance(exc, e.ReadOnlyError) or re.search(r"\bREADONLY\b", text):
            return "readonly", (f"Redis at {where} is read-only ({text}): BKASH_TOKEN_STORE must "
                                "name the primary, not a replica")
        if isinstance(exc, e.OutOfMemoryError) or re.search(r"\bOOM\b", text):
            return "oom", (f"Redis at {where} is out of memory and refuses writes ({text}): raise "
                           "its maxmemory or free memory")
        if isinstance(exc, e.ResponseError):
            return "refused", f"Redis at {where} refused a command ({type(exc).__name__}: {text})"
        tls = next((c for c in _chain(exc) if isinstance(c, ssl.SSLError)), None)
        if tls is not None:
            reason = getattr(tls, "verify_message", None) or tls.reason or type(tls).__name__
            return "tls", (f"Redis at {where}: the TLS handshake failed ({reason}); check "
                           "ssl_ca_certs (the CA that signed the server's certificate) and "
                           "ssl_cert_reqs in BKASH_TOKEN_STORE")
        if isinstance(exc, e.AuthenticationError):
            return "auth", (f"Redis at {where} refused the user name or password of "
                            f"BKASH_TOKEN_STORE ({text})")
        return "unreachable", f"Redis at {where} is unreachable ({type(exc).__name__}: {text})"

    # -- the record ------------------------------------------------------------------------------

    def _decode(self, raw: bytes | None) -> TokenState | None:
        if not raw:
            return None
        if raw.startswith(_SEALED):
            if self._unseal is None:
                raise _Unreadable(
                    f"it is sealed with a payload key and this worker has none: set "
                    f"{_KEY_SETTINGS} to the key list of the other worker hosts")
            try:
                raw = self._unseal(raw[len(_SEALED):])
            except Exception as exc:  # noqa: BLE001 - which key failed is in the message
                raise _Unreadable(
                    f"it is sealed with a payload key this worker does not hold ({exc}): "
                    f"{_KEY_SETTINGS} differs from the other worker hosts'") from None
        try:
            return TokenState.model_validate_json(raw)
        except ValueError:
            raise _Unreadable("it is not a token record this version reads (another program "
                              "or version wrote it?); delete the key once no worker uses it") \
                from None

    def _encode(self, state: TokenState) -> bytes:
        record = state.model_dump_json().encode()
        return record if self._seal is None else _SEALED + self._seal(record)

    def _read(self, raw: bytes | None) -> TokenState | None:
        """The shared state in ``raw``; None when there is none or it cannot be read (logged
        once, and remembered: see :meth:`locked`)."""
        try:
            shared = self._decode(raw)
        except _Unreadable as why:
            if str(why) != self._unreadable:
                log.warning("bKash token store: the token record in Redis at %s (%s) cannot be "
                            "read: %s. Its grant/refresh calls count as spent: this worker "
                            "neither renews the token nor overwrites the record", self._where,
                            self._state_key, why)
            self._unreadable = str(why)
            self._seen = None  # never the expected value of a write
            return None
        if self._unreadable is not None:
            log.warning("bKash token store: the token record in Redis at %s can be read again",
                        self._where)
            self._unreadable = None
        self._seen = raw or b""
        return shared

    async def _write(self, state: TokenState) -> None:
        """Compare-and-set against the record last seen; one changed meanwhile is merged in."""
        for _ in range(3):
            if self._seen is None:
                shared = self._read(await self._redis.get(self._state_key))
                if self._unreadable is not None:
                    return
                state = state.merged(shared) if shared is not None else state
            record = self._encode(state)
            if await self._write_script(keys=[self._state_key],
                                        args=[self._seen, record, _RECORD_SECONDS]):
                self._seen = record
                self._unsynced = False
                return
            self._seen = None
        # Still contended (renewals of other hosts): the next load or save tries again.

    # -- the store -------------------------------------------------------------------------------

    async def load(self) -> TokenState | None:
        local = self._fallback.load_now()
        if not self._redis_worth_trying():
            return local
        try:
            raw = await self._redis.get(self._state_key)
        except self._errors as exc:
            self._went_down(exc, "read")
            return local
        self._came_back("read")
        shared = self._read(raw)
        if shared is None:
            merged = local
        else:
            merged = shared.merged(local)
        if self._unsynced and self._unreadable is None:
            if merged is not None and merged != shared:
                # What this host learnt while Redis was away (or before this process) goes back.
                try:
                    await self._write(merged)
                except self._errors as exc:
                    self._went_down(exc, "write")
                else:
                    self._came_back("write")
            else:
                self._unsynced = False
        return merged

    async def save(self, state: TokenState) -> None:
        self._fallback.save_now(state)  # the host's copy, for an outage
        self._unsynced = True
        if not self._redis_worth_trying():
            return
        try:
            await self._write(state)
        except self._errors as exc:
            self._went_down(exc, "write")
            return
        self._came_back("write")

    @contextlib.asynccontextmanager
    async def locked(self, wait: float | None = None) -> AsyncIterator[None]:
        if not self._redis_worth_trying():
            self._refuse_unknown_budget()  # as last seen, before Redis went away
            async with self._fallback.locked(wait):
                yield
            return
        nonce = f"{self.owner}:{uuid.uuid4().hex[:8]}"
        try:
            acquired = await self._acquire(nonce, wait)
        except self._errors as exc:
            self._went_down(exc, "lease")
            self._refuse_unknown_budget()
            async with self._fallback.locked(wait):
                yield
            return
        self._came_back("lease")
        if not acquired:
            raise TokenStoreBusy("another process holds the renewal lease")
        try:
            try:
                self._read(await self._redis.get(self._state_key))
            except self._errors as exc:
                self._went_down(exc, "read")
            self._refuse_unknown_budget()
            yield
        finally:
            try:
                await self._release(keys=[self._lease_key], args=[nonce])
            except self._errors as exc:  # the lease expires by itself
                self._went_down(exc, "release")
            else:
                self._came_back("release")

    def _refuse_unknown_budget(self) -> None:
        if self._unreadable is not None:
            raise TokenBudgetUnknown(
                f"the bKash token record in Redis cannot be read by this worker: "
                f"{self._unreadable}; its grant/refresh calls count as spent, so no token call "
                "is made", retry_after=60.0)

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


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen
