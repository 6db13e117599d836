"""Settings of merchant accounts beside the default one (README "Several merchant accounts").

The single-account settings (BKASH_*, MONETIX_*) are the account ``default``. Every other account
is listed by id in PAYMENTS_ACCOUNTS (or has a table in the TOML file) and has its own settings,
complete on their own (nothing is inherited from the default account):

    PAYMENTS_ACCOUNTS=brand2,live
    BKASH__BRAND2__BASE_URL=...  BKASH__BRAND2__APP_KEY=...  (APP_SECRET, USERNAME, PASSWORD, ...)
    MONETIX__LIVE__PROJECT_ID=...  MONETIX__LIVE__SECRET_KEY=...  (BASE_URL, PAYMENT_PAGE_URL, ...)

or in the TOML file ``[bkash.accounts.brand2]`` / ``[monetix.accounts.live]`` tables with the keys in
lower case. The account's part of a name is its id in upper case with '-' as '_'. Messages name the
account and the setting, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from contracts.common import ACCOUNT_ID, DEFAULT_ACCOUNT

ACCOUNTS = "PAYMENTS_ACCOUNTS"
# setting (after BKASH__<ACCOUNT>__) -> (where it goes, field)
BKASH_KEYS = {"BASE_URL": ("credentials", "base_url"), "APP_KEY": ("credentials", "app_key"),
              "APP_SECRET": ("credentials", "app_secret"), "USERNAME": ("credentials", "username"),
              "PASSWORD": ("credentials", "password"), "VOID_PATH": ("paths", "void"),
              "REFUND_API": ("paths", "refund_api"),
              "REFUND_V2_BASE_URL": ("paths", "refund_v2_base_url")}
BKASH_REQUIRED = ("BASE_URL", "APP_KEY", "APP_SECRET", "USERNAME", "PASSWORD")
MONETIX_KEYS = {"PROJECT_ID": ("gate", "project_id"), "SECRET_KEY": ("gate", "secret_key"),
                "BASE_URL": ("gate", "base_url"), "SALE_PATH": ("gate", "sale_path"),
                "CLARIFICATION_PATH": ("gate", "clarification_path"),
                "STATUS_PATH": ("gate", "status_path"), "REFUND_PATH": ("gate", "refund_path"),
                "PAYMENT_PAGE_URL": ("payment_page", "base_url")}
_URLS = {"BASE_URL", "REFUND_V2_BASE_URL", "PAYMENT_PAGE_URL"}
_PROVIDERS = {"BKASH": BKASH_KEYS, "MONETIX": MONETIX_KEYS}


def env_name(provider: str, account_id: str, key: str) -> str:
    """BKASH__BRAND2__APP_KEY: the setting ``key`` of account ``account_id``."""
    return f"{provider}__{account_id.upper().replace('-', '_')}__{key}"


def toml_name(provider: str, account_id: str, key: str) -> str:
    return f"[{provider.lower()}.accounts.{account_id}] {key.lower()}"


def flatten_account_tables(section: str, tables: Any) -> tuple[dict[str, str], list[str]]:
    """``[bkash.accounts.<id>]`` tables as their environment names, and the account ids."""
    flat: dict[str, str] = {}
    ids: list[str] = []
    if not isinstance(tables, dict):
        return {f"{section.upper()}_ACCOUNTS": str(tables)}, ids
    for account, values in tables.items():
        ids.append(str(account))
        if not isinstance(values, dict):
            flat[f"{section.upper()}__{str(account).upper()}__"] = ""  # refused by load_accounts
            continue
        for key, value in values.items():
            flat[env_name(section.upper(), str(account), str(key).upper())] = str(value)
    return flat, ids


def account_ids(listed: str) -> list[str]:
    return [a.strip() for a in listed.split(",") if a.strip()]


def load_accounts(values: Mapping[str, str], file_ids: list[str], *, providers=("BKASH", "MONETIX"),
                  timeout: float = 30.0, every_account_configured: bool = True
                  ) -> tuple[dict[str, dict], dict[str, dict], list[str]]:
    """The extra accounts' bKash and Monetix settings (as the models' dicts), and the problems."""
    problems: list[str] = []
    ids: list[str] = []
    for account in account_ids(values.get(ACCOUNTS, "")) + file_ids:
        if account not in ids:
            ids.append(account)
    valid: list[str] = []
    env_forms: dict[str, str] = {}
    for account in ids:
        if account == DEFAULT_ACCOUNT:
            problems.append(f"{ACCOUNTS}: {DEFAULT_ACCOUNT!r} is the account of the BKASH_* and "
                            "MONETIX_* settings; list only the other accounts")
        elif not ACCOUNT_ID.fullmatch(account):
            problems.append(f"{ACCOUNTS}: account id {account[:40]!r} must be 1-32 lower-case "
                            "letters, digits, '_' or '-', starting with a letter or digit")
        elif env_name("", account, "") in env_forms:
            problems.append(f"{ACCOUNTS}: accounts {env_forms[env_name('', account, '')]} and "
                            f"{account} have the same setting names ({env_name('BKASH', account, '*')})"
                            "; rename one")
        else:
            env_forms[env_name("", account, "")] = account
            valid.append(account)
    known = {env_name(p, a, k) for p in providers for a in valid for k in _PROVIDERS[p]}
    for name in values:
        if name.startswith(tuple(f"{p}__" for p in providers)) and name not in known:
            problems.append(f"{name}: no such account setting (its account is not in {ACCOUNTS}, "
                            "or the setting is misspelt)")
    bkash: dict[str, dict] = {}
    monetix: dict[str, dict] = {}
    for account in valid:
        has = {p: any(values.get(env_name(p, account, k)) for k in _PROVIDERS[p]) for p in providers}
        if every_account_configured and not any(has.values()):
            problems.append(f"account {account}: listed in {ACCOUNTS} but has no settings; set "
                            f"{env_name('BKASH', account, '*')} and/or "
                            f"{env_name('MONETIX', account, '*')}")
        if has.get("BKASH"):
            bkash[account] = _section(values, "BKASH", account, BKASH_REQUIRED, problems)
        if has.get("MONETIX"):
            monetix[account] = _section(values, "MONETIX", account, ("PROJECT_ID", "SECRET_KEY"),
                                        problems)
            _monetix_rules(monetix[account], account, timeout, problems)
    return bkash, monetix, problems


def _section(values: Mapping[str, str], provider: str, account: str, required: tuple[str, ...],
             problems: list[str]) -> dict:
    model: dict[str, dict] = {}
    for key, (part, field) in _PROVIDERS[provider].items():
        name = env_name(provider, account, key)
        value = values.get(name)
        where = f"account {account}: {name} (TOML {toml_name(provider, account, key)})"
        if not value:
            if key in required:
                problems.append(f"{where} is not set")
            continue
        if key in _URLS and (urlsplit(value).scheme not in ("http", "https")
                             or not urlsplit(value).hostname):
            problems.append(f"{where} must be an absolute http(s) URL")
        if key == "REFUND_API" and value not in ("v1", "v2"):
            problems.append(f"{where} must be v1 or v2")
        if key == "PROJECT_ID" and (not value.isdigit() or int(value) <= 0):
            problems.append(f"{where} must be a positive number")
            continue
        model.setdefault(part, {})[field] = int(value) if key == "PROJECT_ID" else value
    return model


def _monetix_rules(model: dict, account: str, timeout: float, problems: list[str]) -> None:
    gate = model.setdefault("gate", {})
    gate["timeout_seconds"] = timeout
    page = model.setdefault("payment_page", {})
    if "project_id" in gate and "secret_key" in gate:
        page.update(project_id=gate["project_id"], secret_key=gate["secret_key"])


def shared_credentials(bkash: Mapping[str, Any]) -> list[str]:
    """Two accounts with one bKash credential set would share its token and its hourly budget:
    refused, the problem naming both accounts (``bkash``: account id -> BkashCredentials)."""
    seen: dict[tuple[str, str, str], str] = {}
    problems = []
    for account, creds in bkash.items():
        key = (creds.base_url.rstrip("/"), creds.app_key, creds.username)
        if key in seen:
            problems.append(f"accounts {seen[key]} and {account} have the same bKash credential set "
                            "(base URL, app key and username): they would share one token and one "
                            "budget of token calls; give each account its own credential set")
        seen.setdefault(key, account)
    return problems


def shared_projects(projects: Mapping[str, int]) -> list[str]:
    """Two accounts with one Monetix project: its callbacks could not be told apart."""
    seen: dict[int, str] = {}
    problems = []
    for account, project in projects.items():
        if project in seen:
            problems.append(f"accounts {seen[project]} and {account} have the same Monetix project "
                            f"{project}: each account needs its own project")
        seen.setdefault(project, account)
    return problems
