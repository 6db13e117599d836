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
    calls: list[float] = []  # when each grant/refresh was made (wall clock)


class TokenStore(abc.ABC):
    """Where one credential set's :class:`TokenState` lives: the interface a store implements.

    :class:`TokenManager` uses it like this, and a store must make that safe across every process
    that shares it:

    * ``async with store.locked():`` holds the store's exclusive lock (one renewal at a time across
      processes); inside it the manager calls ``load()``, may grant/refresh, then ``save()``.
    * ``load()`` returns the last saved state, or None when there is none or it cannot be read (the
      manager then grants, so a store never raises for a missing or damaged state).
    * ``save(state)`` stores the whole state (it holds the id_token and refresh_token: keep it
      private). Every renewal is saved, failed ones too, because the calls count against the budget.
    """

    @abc.abstractmethod
    def load(self) -> TokenState | None:
        """The last saved state, or None."""

    @abc.abstractmethod
    def save(self, state: TokenState) -> None:
        """Replace the saved state with ``state``."""

    @abc.abstractmethod
    def locked(self) -> contextlib.AbstractAsyncContextManager[None]:
        """An async context manager holding the store's exclusive lock."""


class InMemoryTokenStore(TokenStore):
    """Keeps nothing outside the manager: the token lives in this process only (the default)."""

    def load(self) -> TokenState | None:
        return None

    def save(self, state: TokenState) -> None:
        pass

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        yield


class FileTokenStore(TokenStore):
    """Share one token and one grant budget between every worker process on this host.

    A worker restart (deploy, crash, kill -9) or a second worker process must not grant again:
    bKash counts grant/refresh calls per credential set, not per process, and blocks after two an
    hour (§3.2). The file holds a secret, so it is created 0600; a flock serializes renewals.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = Path(path)

    def load(self) -> TokenState | None:
        try:
            return TokenState.model_validate_json(self._path.read_text())
        except (OSError, ValueError):
            return None

    def save(self, state: TokenState) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(state.model_dump_json())
        os.replace(tmp, self._path)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class TokenManager:
    """Grant once, cache, refresh before expiry, re-grant once on HTTP 401.

    bKash blocks a merchant for an hour after more than two grant/refresh calls within an hour
    (§3.2, [DOC via api-evangelist]; karim-007/laravel-bkash-tokenize PR #5-#7). The budget is
    enforced here: a refresh due at minute 50 is postponed while the budget is spent and the token is
    still valid; only when no valid token is left does a caller get ``BkashTokenRateLimited``.
    With a ``FileTokenStore`` the token and the budget survive restarts and are shared by processes.
    """

    def __init__(self, http: httpx.AsyncClient, creds: BkashCredentials, paths: BkashPaths, *,
                 timeout: float = 30.0, refresh_after: float = 50 * 60,
                 calls_per_hour: int = 2, clock: Callable[[], float] = time.time,
                 store: TokenStore | None = None) -> None:
        self._http, self._creds, self._paths = http, creds, paths
        self._timeout = timeout
        self._refresh_after = refresh_after
        self._calls_per_hour = calls_per_hour
        self._clock = clock
        self._lock = asyncio.Lock()
        self._store = store or InMemoryTokenStore()
        self.state = TokenState()

    @property
    def token_calls_last_hour(self) -> int:
        self._forget_old_calls()
        return len(self.state.calls)

    def _fresh(self) -> bool:
        return bool(self.state.id_token) and \
            self._clock() < self.state.obtained_at + self._refresh_after

    def _usable(self) -> bool:
        """Valid, though due for refresh: keep using it while the budget is spent."""
        return bool(self.state.id_token) and self._clock() < self.state.expires_at - 60 \
            and not self._budget_left()

    async def token(self) -> str:
        async with self._lock:
            if self._fresh() or self._usable():
                return self.state.id_token  # type: ignore[return-value]
            async with self._store.locked():
                self._adopt_stored()
                if self._fresh() or self._usable():
                    return self.state.id_token  # type: ignore[return-value]
                return await self._renew(prefer_refresh=True)

    async def replace(self, rejected_token: str) -> str:
        """The gateway answered 401 to ``rejected_token``: get a new one (once across callers)."""
        async with self._lock:
            async with self._store.locked():
                self._adopt_stored()
                if self.state.id_token and self.state.id_token != rejected_token:
                    return self.state.id_token  # another caller or process already replaced it
                self.state.id_token = None
                return await self._renew(prefer_refresh=False)

    def _adopt_stored(self) -> None:
        stored = self._store.load()
        # Every renewal is saved, so the store is the truth for the token and the calls made.
        if stored is not None and stored.obtained_at >= self.state.obtained_at:
            self.state = stored

    def _forget_old_calls(self) -> None:
        horizon = self._clock() - 3600
        self.state.calls = [t for t in self.state.calls if t > horizon]

    def _budget_left(self) -> bool:
        return self._calls_per_hour <= 0 or self.token_calls_last_hour < self._calls_per_hour

    async def _renew(self, *, prefer_refresh: bool) -> str:
        if not self._budget_left():
            wait = max(1.0, self.state.calls[0] + 3600 - self._clock())
            raise BkashTokenRateLimited(
                "token", "a new token is needed but the two grant/refresh calls allowed per hour "
                f"are spent; next call possible in {wait:.0f} s",
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
            self._store.save(self.state)  # the calls count even when they failed

    async def _token_call(self, operation: str, path: str, extra: dict[str, str]) -> str:
        body = {"app_key": self._creds.app_key,
                "app_secret": self._creds.app_secret.get_secret_value(), **extra}
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "username": self._creds.username,
                   "password": self._creds.password.get_secret_value()}
        self.state.calls.append(self._clock())
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
