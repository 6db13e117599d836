"""Several merchant accounts on the file token store (README "Several merchant accounts"): bKash
counts grant/refresh calls per credential set, so each account's credential set has a token file of
its own beside BKASH_TOKEN_CACHE_FILE (worker.token_store_for), holding only that account's token."""

from __future__ import annotations

import json
import stat

import httpx

from config import load_settings
from providers.bkash_config import credential_id
from providers.bkash_tokens import FileTokenStore
from worker import bkash_client

ENV = {
    "BKASH_BASE_URL": "https://bkash.test/v1.2.0-beta", "BKASH_APP_KEY": "default-app-key",
    "BKASH_APP_SECRET": "default-app-secret", "BKASH_USERNAME": "default-merchant",
    "BKASH_PASSWORD": "default-password", "PAYMENTS_CALLBACK_BASE_URL": "https://shop.test",
    "PAYMENTS_LINK_SECRET": "x" * 32, "BKASH_TOKEN_STORE": "file",
    "PAYMENTS_ACCOUNTS": "brand2",
    "BKASH__BRAND2__BASE_URL": "https://bkash.test/v1.2.0-beta",
    "BKASH__BRAND2__APP_KEY": "brand2-app-key", "BKASH__BRAND2__APP_SECRET": "brand2-app-secret",
    "BKASH__BRAND2__USERNAME": "brand2-merchant", "BKASH__BRAND2__PASSWORD": "brand2-password",
}


class TwoAccountsBkash:
    """Grants a token named after the app key that asked for it; counts calls per app key."""

    def __init__(self) -> None:
        self.token_calls: dict[str, int] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token/grant"):
            app_key = json.loads(request.content)["app_key"]
            self.token_calls[app_key] = self.token_calls.get(app_key, 0) + 1
            return httpx.Response(200, json={"statusCode": "0000", "id_token": f"tok-{app_key}",
                                             "expires_in": 3600, "refresh_token": "r"})
        return httpx.Response(200, json={"statusCode": "0000", "paymentID": "TR1",
                                         "transactionStatus": "Authorized", "trxID": "ABC",
                                         "amount": "500.00"})


async def test_each_account_gets_its_own_token_file_with_only_its_own_token(tmp_path):
    base = tmp_path / "tokens" / "bkash-token.json"
    settings = load_settings({**ENV, "BKASH_TOKEN_CACHE_FILE": str(base)})
    accounts = settings.bkash_by_account()
    assert set(accounts) == {"default", "brand2"}
    fake = TwoAccountsBkash()

    async def every_account_queries() -> None:  # one worker process's bKash clients
        async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
            for account in accounts.values():
                client = bkash_client(settings, account.credentials, http, account.paths)
                assert isinstance(client.tokens._store, FileTokenStore)
                await client.query_payment("TR1")

    await every_account_queries()
    brand2 = accounts["brand2"].credentials
    files = {"default": base,
             "brand2": base.with_name(f"bkash-token-{credential_id(brand2)}.json")}
    assert sorted(p.name for p in base.parent.glob("*.json")) == sorted(
        p.name for p in files.values())  # two files, nothing else
    for account, path in files.items():
        app_key = accounts[account].credentials.app_key
        text = path.read_text()
        assert json.loads(text)["id_token"] == f"tok-{app_key}"
        others = [a.credentials for name, a in accounts.items() if name != account]
        assert all(f"tok-{c.app_key}" not in text for c in others)  # only its own token
        assert all(a.credentials.app_secret.get_secret_value() not in text and
                   a.credentials.password.get_secret_value() not in text
                   for a in accounts.values())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fake.token_calls == {"default-app-key": 1, "brand2-app-key": 1}

    await every_account_queries()  # a restarted worker: each account's token from its own file
    assert fake.token_calls == {"default-app-key": 1, "brand2-app-key": 1}
