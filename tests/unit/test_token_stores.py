"""The token store is an interface: any store that keeps a TokenState and holds a lock shares one
token and one grant budget between managers (the next store, Redis, plugs in here)."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from providers.bkash import BkashClient, BkashPaths, TokenManager
from providers.bkash_tokens import FileTokenStore, InMemoryTokenStore, TokenState, TokenStore
from tests.unit.test_bkash_client import CREDS, Clock, FakeBkash


class DictTokenStore(TokenStore):
    """A store as small as the interface allows: what a shared store (Redis) has to provide."""

    def __init__(self) -> None:
        self.saved: TokenState | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> TokenState | None:
        return self.saved.model_copy(deep=True) if self.saved else None

    async def save(self, state: TokenState) -> None:
        self.saved = state.model_copy(deep=True)

    @contextlib.asynccontextmanager
    async def locked(self, wait=None):
        async with self._lock:
            yield


def test_a_store_that_does_not_implement_the_whole_interface_cannot_be_made():
    class NoLock(TokenStore):
        async def load(self):
            return None

        async def save(self, state):
            pass

    with pytest.raises(TypeError):
        NoLock()  # type: ignore[abstract]
    with pytest.raises(TypeError):
        TokenStore()  # type: ignore[abstract]
    assert issubclass(FileTokenStore, TokenStore) and issubclass(InMemoryTokenStore, TokenStore)


async def test_without_a_store_each_manager_keeps_its_own_token():
    fake, clock = FakeBkash(), Clock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    for _ in range(2):
        await BkashClient(http, CREDS, tokens=TokenManager(http, CREDS, BkashPaths(),
                                                           clock=clock)).query_payment("TR1")
    assert fake.token_calls == ["grant", "grant"]


async def test_any_store_implementing_the_interface_shares_one_token_between_managers():
    fake, clock, store = FakeBkash(), Clock(), DictTokenStore()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    managers = [TokenManager(http, CREDS, BkashPaths(), clock=clock, store=store) for _ in range(3)]
    tokens = await asyncio.gather(*(m.token() for m in managers))
    assert tokens == ["tok-1"] * 3
    assert fake.token_calls == ["grant"]
    assert store.saved is not None and store.saved.id_token == "tok-1"
    assert len(store.saved.calls) == 1  # the budget travels with the token


async def test_the_default_client_wires_a_given_store_into_its_token_manager(tmp_path):
    fake = FakeBkash()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    path = tmp_path / "token.json"
    await BkashClient(http, CREDS, token_store=FileTokenStore(path)).query_payment("TR1")
    await BkashClient(http, CREDS, token_store=FileTokenStore(path)).query_payment("TR1")
    assert fake.token_calls == ["grant"]


async def test_a_failed_early_renewal_keeps_using_the_still_valid_token(tmp_path):
    """bKash refused the renewal due at minute 50 (HTTP 429: blocked): the token it issued is good
    for ten more minutes, so the call goes on with it instead of failing."""
    fake, clock = FakeBkash(), Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token/refresh"):
            fake.token_calls.append("refresh")
            return httpx.Response(429, json={"message": "Too many token requests"})
        return fake(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    manager = TokenManager(http, CREDS, BkashPaths(), clock=clock,
                           store=FileTokenStore(tmp_path / "t.json"))
    client = BkashClient(http, CREDS, tokens=manager)
    await client.query_payment("TR1")
    clock.now += 51 * 60
    status = await client.query_payment("TR1")
    assert status.payment_id == "TR1"
    assert fake.token_calls == ["grant", "refresh"]
    assert fake.requests[-1].headers["Authorization"] == "tok-1"
