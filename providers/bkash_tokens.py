"""bKash token management: grant, refresh, the hourly budget, and where the token is kept.

bKash blocks a merchant for an hour after more than two grant/refresh calls within an hour (§3.2), and
counts them per credential set, not per process. So the token and the calls made are a
:class:`TokenState` kept in a :class:`TokenStore` that every worker process using the credential set
can share; :class:`TokenManager` decides when to grant or refresh. Facts and sources:
../shared/reference/bkash-api.md §3.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
from pydantic import BaseModel

from providers.bkash_config import BkashCredentials, BkashPaths
from providers.bkash_errors import (
    BkashError,
    BkashMerchantConfigError,
    BkashNoResponse,
    BkashTokenRateLimited,
    BkashTokenUnavailable,
    BkashUnexpectedResponse,
    json_object,
    raise_for_business_error,
)

# The client's logger: token lines keep the name they had before this module was split out.
log = logging.getLogger("providers.bkash")


class TokenState(BaseModel):
    """Everything the token budget depends on; shared between worker processes by a TokenStore."""

    id_token: str | None = None
    refresh_token: str | None = None
    obtained_at: float = 0.0
    expires_at: float = 0.0
    calls: list[float] = []  # when each grant/refresh was sent (wall clock), written before sending

    def merged(self, other: TokenState | None) -> TokenState:
        """What two records of one credential set together know: the newer token, and every call
        either has seen (over-counting a call never breaks the budget; forgetting one could)."""
        if other is None:
            return self.model_copy(deep=True)
        newer = other if other.obtained_at > self.obtained_at else self
        # A multiset union: both records list the calls they share; two calls at the same instant
        # (a coarse or fake clock) stay two.
        calls = sorted((Counter(self.calls) | Counter(other.calls)).elements())
        return newer.model_copy(update={"calls": calls}, deep=True)


class TokenStoreBusy(Exception):
    """``locked(wait=...)`` did not get the lock in time: another process is renewing."""


class TokenBudgetUnknown(TokenStoreBusy):
    """``locked()`` refuses: the store cannot know the calls made (a shared record it cannot read),
    so they count as spent; a valid token is still used, and no grant/refresh is sent."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TokenStore(abc.ABC):
    """Where one credential set's :class:`TokenState` lives: the interface a store implements.

    :class:`TokenManager` uses it like this, and a store must make that safe across every process
    that shares it:

    * ``async with store.locked(wait=s):`` holds the store's exclusive lock (one renewal at a time
      across processes), raising :class:`TokenStoreBusy` when it is not free within ``s`` seconds
      (None: wait as long as it takes); inside it the manager calls ``load()``, may grant/refresh,
      then ``save()``.
    * ``load()`` returns the last saved state, or None when there is none or it cannot be read (the
      manager then grants, so a store never raises for a missing or damaged state).
    * ``save(state)`` stores the whole state (it holds the id_token and refresh_token: keep it
      private). A renewal is saved before its call is sent (a process killed mid-call has still
      spent the call) and again with its result, failed ones too.
    """

    @abc.abstractmethod
    async def load(self) -> TokenState | None:
        """The last saved state, or None."""

    @abc.abstractmethod
    async def save(self, state: TokenState) -> None:
        """Replace the saved state with ``state``."""

    @abc.abstractmethod
    def locked(self, wait: float | None = None) -> contextlib.AbstractAsyncContextManager[None]:
        """An async context manager holding the store's exclusive lock."""


class InMemoryTokenStore(TokenStore):
    """Keeps nothing outside the manager: the token lives in this process only (the default)."""

    async def load(self) -> TokenState | None:
        return None

    async def save(self, state: TokenState) -> None:
        pass

    @contextlib.asynccontextmanager
    async def locked(self, wait: float | None = None) -> AsyncIterator[None]:
        yield


class FileTokenStore(TokenStore):
    """Share one token and one grant budget between every worker process on this host.

    A worker restart (deploy, crash, kill -9) or a second worker process must not grant again:
    bKash counts grant/refresh calls per credential set, not per process, and blocks after two an
    hour (§3.2). The file holds a secret, so it is created 0600; a flock serializes renewals (the
    kernel drops it when its holder dies, kill -9 included).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = Path(path)

    async def load(self) -> TokenState | None:
        return self.load_now()

    def load_now(self) -> TokenState | None:
        try:
            return TokenState.model_validate_json(self._path.read_text())
        except (OSError, ValueError):
            return None

    async def save(self, state: TokenState) -> None:
        self.save_now(state)

    def save_now(self, state: TokenState) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(state.model_dump_json())
        os.replace(tmp, self._path)

    @contextlib.asynccontextmanager
    async def locked(self, wait: float | None = None) -> AsyncIterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = None if wait is None else time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TokenStoreBusy("another process holds the token file's lock") from None
                    await asyncio.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class TokenManager:
    """Grant once, cache, refresh before expiry, re-grant once on HTTP 401.

    bKash blocks a merchant for an hour after more than two grant/refresh calls within an hour
    (§3.2, [DOC via api-evangelist]; karim-007/laravel-bkash-tokenize PR #5-#7). The budget is
    enforced here: a refresh due at minute 50 is postponed while the budget is spent and the token is
    still valid; only when no valid token is left does a caller get ``BkashTokenRateLimited``.
    With a shared store (file, Redis) the token and the budget survive restarts and are shared by
    processes and hosts; one process renews while the others keep using the valid token, or wait
    for the new one up to ``lease_wait`` seconds (then ``BkashTokenUnavailable``: the caller's call
    was not sent, try again shortly).
    """

    def __init__(self, http: httpx.AsyncClient, creds: BkashCredentials, paths: BkashPaths, *,
                 timeout: float = 30.0, refresh_after: float = 50 * 60,
                 calls_per_hour: int = 2, clock: Callable[[], float] = time.time,
                 store: TokenStore | None = None, lease_wait: float | None = None,
                 budget_window: float = 3600.0,
                 on_call: Callable[[str, str], None] | None = None) -> None:
        self._http, self._creds, self._paths = http, creds, paths
        self._timeout = timeout
        self._refresh_after = refresh_after
        self._calls_per_hour = calls_per_hour
        # bKash's rolling hour (§3.2). Shorter only against the sandbox, for tests and the chaos
        # run (BKASH_TOKEN_BUDGET_WINDOW_SECONDS): never against real bKash.
        self._budget_window = budget_window
        # bKash counts a call when it arrives, we when we send it: a call that took longer to
        # arrive than the one an hour later would be counted inside bKash's hour (a chaos run
        # saw 3 calls in 59.996 s at the sandbox). A call leaves our window this much later.
        self._budget_margin = min(1.0, budget_window * 0.01)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._store = store or InMemoryTokenStore()
        # How long a caller without a valid token waits for another process's renewal: a renewal
        # takes at most one provider timeout, and the caller's own call must still fit in its
        # activity's start-to-close (2 x timeout + 5 s).
        self._lease_wait = timeout if lease_wait is None else lease_wait
        self.state = TokenState()
        # (operation, outcome) of every grant/refresh sent: the worker counts them (metrics).
        self._on_call = on_call or (lambda _operation, _outcome: None)

    @property
    def token_calls_last_hour(self) -> int:
        self._forget_old_calls()
        return len(self.state.calls)

    @property
    def token_calls_left(self) -> int | None:
        """Grant/refresh calls left of the budget in the rolling hour, as this process knows it (the
        worker's ``bkash_token_budget_remaining`` gauge); None when no budget is enforced."""
        if self._calls_per_hour <= 0:
            return None
        return max(0, self._calls_per_hour - self.token_calls_last_hour)

    async def learn_stored_calls(self) -> None:
        """Take in the calls other processes sharing the store have recorded (only the calls; the
        token is adopted where it is used), so ``token_calls_left`` counts theirs too."""
        try:
            stored = await self._store.load()
        except Exception:  # noqa: BLE001 - for a gauge: what this process knows stands
            return
        if stored is not None:
            self.state.calls = self.state.merged(stored).calls

    def _fresh(self) -> bool:
        # Due at refresh_after, or 5 minutes before expiry when bKash gives a shorter life.
        due = min(self.state.obtained_at + self._refresh_after, self.state.expires_at - 300)
        return bool(self.state.id_token) and self._clock() < due

    def _valid(self) -> bool:
        return bool(self.state.id_token) and self._clock() < self.state.expires_at - 60

    def _usable(self) -> bool:
        """Valid, though due for refresh: keep using it while the budget is spent."""
        return self._valid() and not self._budget_left()

    async def token(self) -> str:
        if self._fresh() or self._usable() or (self._valid() and self._lock.locked()):
            # A renewal running in this process does not stop the others using the valid token.
            return self.state.id_token  # type: ignore[return-value]
        async with self._lock:
            await self._adopt_stored()  # another process or host may have renewed already
            if self._fresh() or self._usable():
                return self.state.id_token  # type: ignore[return-value]
            valid = self._valid()
            try:
                # Due but still valid: renew only if nobody else is; never wait for it.
                async with self._store.locked(wait=0 if valid else self._lease_wait):
                    await self._adopt_stored()
                    if self._fresh() or self._usable():
                        return self.state.id_token  # type: ignore[return-value]
                    try:
                        return await self._renew(prefer_refresh=True)
                    except BkashError as err:
                        if not self._valid() or isinstance(err, BkashMerchantConfigError):
                            raise
                        # An early renewal that failed costs nothing while the token is valid.
                        log.warning("bKash token renewal failed (%s); using the current token "
                                    "until it expires", err.kind)
                        return self.state.id_token  # type: ignore[return-value]
            except TokenStoreBusy as busy:
                if valid:
                    return self.state.id_token  # type: ignore[return-value]
                raise self._busy("token", busy) from None

    async def replace(self, rejected_token: str) -> str:
        """The gateway answered 401 to ``rejected_token``: get a new one (once across callers)."""
        async with self._lock:
            await self._adopt_stored()
            if self.state.id_token and self.state.id_token != rejected_token and self._valid():
                return self.state.id_token  # another caller or process already replaced it
            try:
                async with self._store.locked(wait=self._lease_wait):
                    await self._adopt_stored()
                    if self.state.id_token and self.state.id_token != rejected_token \
                            and self._valid():
                        return self.state.id_token
                    self.state.id_token = None
                    return await self._renew(prefer_refresh=False)
            except TokenStoreBusy as busy:
                raise self._busy("token", busy) from None

    def _busy(self, operation: str, busy: TokenStoreBusy) -> BkashTokenRateLimited:
        if isinstance(busy, TokenBudgetUnknown):
            return BkashTokenRateLimited(operation, f"{busy}; the call was not sent",
                                         retry_after=timedelta(seconds=busy.retry_after))
        return BkashTokenUnavailable(
            operation, f"no bKash token yet: another process is renewing it (waited "
            f"{self._lease_wait:g} s); the call was not sent", retry_after=timedelta(seconds=2))

    async def _adopt_stored(self) -> None:
        # Every renewal is saved (before and after its call), so the store is the truth for the
        # token and the calls made; what this process knows besides is kept too.
        stored = await self._store.load()
        if stored is not None:
            self.state = stored.merged(self.state)

    def _forget_old_calls(self) -> None:
        horizon = self._clock() - self._budget_window - self._budget_margin
        self.state.calls = [t for t in self.state.calls if t > horizon]

    def _budget_left(self) -> bool:
        return self._calls_per_hour <= 0 or self.token_calls_last_hour < self._calls_per_hour

    async def _renew(self, *, prefer_refresh: bool) -> str:
        if not self._budget_left():
            wait = max(1.0, self.state.calls[0] + self._budget_window + self._budget_margin
                       - self._clock())
            raise BkashTokenRateLimited(
                "token", "a new token is needed but the two grant/refresh calls allowed per hour "
                f"are spent; the call was not sent; next token call possible in {wait:.0f} s",
                retry_after=timedelta(seconds=wait))
        try:
            if prefer_refresh and self.state.refresh_token:
                try:
                    return await self._token_call("refresh", self._paths.refresh,
                                                  {"refresh_token": self.state.refresh_token})
                except BkashTokenRateLimited:
                    raise
                except BkashError as err:
                    log.warning("bKash token refresh failed (%s); granting a new token", err.kind)
                    if not self._budget_left():
                        raise
            return await self._token_call("grant", self._paths.grant, {})
        finally:
            await self._store.save(self.state)  # the calls count even when they failed

    async def _token_call(self, operation: str, path: str, extra: dict[str, str]) -> str:
        try:
            token = await self._send_token_call(operation, path, extra)
        except BkashError as err:
            self._on_call(operation, err.kind)
            raise
        self._on_call(operation, "ok")
        return token

    async def _send_token_call(self, operation: str, path: str, extra: dict[str, str]) -> str:
        body = {"app_key": self._creds.app_key,
                "app_secret": self._creds.app_secret.get_secret_value(), **extra}
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "username": self._creds.username,
                   "password": self._creds.password.get_secret_value()}
        # Written ahead: a process killed while its call is in flight has still spent it (bKash
        # counted it), so the process that takes over must know.
        self.state.calls.append(self._clock())
        await self._store.save(self.state)
        try:
            resp = await self._http.post(self._creds.base_url + path, json=body, headers=headers,
                                         timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise BkashNoResponse(operation, f"no answer ({type(exc).__name__})") from None
        if resp.status_code == 429:
            raise BkashTokenRateLimited(operation, "bKash refused the token call (HTTP 429): "
                                        "too many grant/refresh calls this hour",
                                        retry_after=timedelta(hours=1))
        if resp.status_code in (401, 403):
            raise BkashMerchantConfigError(
                operation, f"bKash refused the credentials (HTTP {resp.status_code}): check "
                "BKASH_USERNAME and BKASH_PASSWORD")
        if resp.status_code >= 300:
            raise BkashNoResponse(operation, f"HTTP {resp.status_code} from bKash")
        data = json_object(resp, operation, None)
        raise_for_business_error(data, operation, None)
        token = data.get("id_token")
        if not isinstance(token, str) or not token:
            raise BkashUnexpectedResponse(operation, "the answer carries no id_token")
        now = self._clock()
        self.state.id_token = token
        self.state.refresh_token = data.get("refresh_token") or self.state.refresh_token
        self.state.obtained_at = now
        self.state.expires_at = now + float(data.get("expires_in") or 3600)
        log.info("bKash %s ok; token valid for %s s", operation, data.get("expires_in"))
        return token
