"""Configuration: environment variables, or a TOML file named by PAYMENTS_CONFIG_FILE.

Validated at start-up; a missing or malformed setting stops the process with a message naming the
setting (never its value, so secrets cannot leak through the message).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr, ValidationError
from temporalio.client import Client

import config_accounts
import config_notify
from providers.bkash import BkashCredentials, BkashPaths
from providers.monetix import MonetixGateConfig, MonetixPaymentPageConfig
from providers.webhooks import WebhookEndpoint
from contracts.bkash import SignatureRule
from contracts.reconciliation import DEFAULT_REPORT_DIR, REPORT_DIR_SETTING
from contracts.common import DEFAULT_ACCOUNT, DEFAULT_MAX_AMOUNT_POISHA, TASK_QUEUE

# setting name -> (TOML section, key)
_BKASH_ENV = {
    "BKASH_BASE_URL": "base_url",
    "BKASH_APP_KEY": "app_key",
    "BKASH_APP_SECRET": "app_secret",
    "BKASH_USERNAME": "username",
    "BKASH_PASSWORD": "password",
}
_REQUIRED = ("BKASH_BASE_URL", "BKASH_APP_KEY", "BKASH_APP_SECRET", "BKASH_USERNAME",
             "BKASH_PASSWORD", "PAYMENTS_CALLBACK_BASE_URL")
# The secret of customers' result links (README "Result links and the redirect signature"): the
# worker puts HMAC(secret, workflow id) into the callbackURL it gives bKash, the endpoint checks it.
LINK_SECRET = "PAYMENTS_LINK_SECRET"
MIN_LINK_SECRET_CHARS = 32


class ConfigError(SystemExit):
    """Raised at start-up; the message names every missing or malformed setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("configuration problem:\n  - " + "\n  - ".join(problems))
        self.problems = problems


class MonetixSettings(BaseModel):
    """Optional: present when MONETIX_PROJECT_ID is set. Test and production are separate projects,
    each with its own secret key (reference monetix-gate.md §1)."""

    gate: MonetixGateConfig
    payment_page: MonetixPaymentPageConfig

    @property
    def project_id(self) -> int:
        return self.gate.project_id


class BkashAccount(BaseModel):
    """One more merchant account's bKash credential set and API paths (config_accounts)."""

    credentials: BkashCredentials
    paths: BkashPaths = BkashPaths()


class Settings(BaseModel):
    # The default account (BKASH_*, MONETIX_*).
    bkash: BkashCredentials
    monetix: MonetixSettings | None = None
    # The other merchant accounts, by id (PAYMENTS_ACCOUNTS; README "Several merchant accounts").
    bkash_accounts: dict[str, BkashAccount] = {}
    monetix_accounts: dict[str, MonetixSettings] = {}
    bkash_paths: BkashPaths = BkashPaths()
    bkash_timeout_seconds: float = 30.0
    # Shared token cache (see providers.bkash.FileTokenStore); None keeps the token in-process.
    bkash_token_cache_file: str | None = None
    # BKASH_TOKEN_STORE: "file" (the default: one host), "memory", or a redis:// / rediss:// URL
    # (every host; the file above is then the fallback while Redis is unreachable).
    bkash_token_store: SecretStr = SecretStr("file")
    # When a token is renewed: bKash says around the 50th/55th minute (bkash-api.md §3.2).
    bkash_token_refresh_after_seconds: float = 50 * 60
    # The renewal lease on Redis: longer than one token call (the provider timeout).
    bkash_token_lease_seconds: float | None = None
    # bKash's rolling hour for the token budget; shorter only for tests and the chaos run against
    # the sandbox (BKASH_TOKEN_BUDGET_WINDOW_SECONDS), never against real bKash.
    bkash_token_budget_window_seconds: float = 3600.0
    callback_base_url: str
    link_secret: SecretStr
    result_page_url: str | None = None
    task_queue: str = TASK_QUEUE
    max_amount_poisha: int = DEFAULT_MAX_AMOUNT_POISHA
    # Where the merchant's order system is told of every payment event (config_notify).
    notify_endpoints: dict[str, WebhookEndpoint] = {}
    notify_timings: dict[str, timedelta] = {}
    # The worker's workflow cache (PAYMENTS_WORKER_CACHE_SIZE): what bounds its memory, ~160 KiB
    # per cached payment (README "Cost at scale"); a payment evicted is replayed when it next moves.
    worker_cache_size: int = 1000
    # PAYMENTS_STICKY_TIMEOUT_SECONDS: after this a workflow task waiting for the worker that has
    # the payment cached goes to any worker (a dead worker's payments move on after it).
    sticky_timeout_seconds: float = 3.0
    # The payments_stalled gauge (README "Metrics"): payments resting in one of these stages longer
    # than PAYMENTS_STALL_AFTER_SECONDS, counted every PAYMENTS_STALL_CHECK_SECONDS.
    stall_stages: tuple[str, ...] = ("CAPTURING", "VOIDING", "REFUNDING")
    stall_after_seconds: float = 900.0
    stall_check_seconds: float = 60.0
    # Where reconciliation writes its JSON and CSV reports (PAYMENTS_RECONCILIATION_DIR).
    reconciliation_dir: str = DEFAULT_REPORT_DIR

    def bkash_by_account(self) -> dict[str, BkashAccount]:
        """Every account's bKash settings, the default account's first."""
        return {DEFAULT_ACCOUNT: BkashAccount(credentials=self.bkash, paths=self.bkash_paths),
                **self.bkash_accounts}

    def monetix_by_account(self) -> dict[str, MonetixSettings]:
        return {**({DEFAULT_ACCOUNT: self.monetix} if self.monetix else {}),
                **self.monetix_accounts}

    @property
    def secrets(self) -> list[str]:
        """Every secret value, for tests that prove none of them leaks."""
        values = [self.link_secret.get_secret_value()]
        for account in self.bkash_by_account().values():
            values += [account.credentials.app_secret.get_secret_value(),
                       account.credentials.password.get_secret_value()]
        for monetix in self.monetix_by_account().values():
            values.append(monetix.gate.secret_key.get_secret_value())
        for endpoint in self.notify_endpoints.values():
            values += [s.get_secret_value() for s in endpoint.secrets]
        return values


def _flatten_toml(path: Path) -> dict[str, str]:
    """[bkash] app_key = ... → BKASH_APP_KEY; [payments] callback_base_url → PAYMENTS_...;
    [bkash.accounts.brand2] app_key → BKASH__BRAND2__APP_KEY (and brand2 in PAYMENTS_ACCOUNTS)."""
    data = tomllib.loads(path.read_text())
    flat: dict[str, str] = {}
    ids: list[str] = []
    for section, values in data.items():
        if isinstance(values, dict):
            for key, value in values.items():
                if key == "accounts" and section in ("bkash", "monetix"):
                    tables, found = config_accounts.flatten_account_tables(section, value)
                    flat.update(tables)
                    ids += found
                elif isinstance(value, list):
                    flat[f"{section}_{key}".upper()] = ",".join(map(str, value))
                else:
                    flat[f"{section}_{key}".upper()] = str(value)
    listed = config_accounts.account_ids(flat.get(config_accounts.ACCOUNTS, ""))
    flat[config_accounts.ACCOUNTS] = ",".join(dict.fromkeys(listed + ids))
    return flat


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    values: dict[str, str] = {}
    file = env.get("PAYMENTS_CONFIG_FILE")
    if file:
        try:
            values.update(_flatten_toml(Path(file)))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"PAYMENTS_CONFIG_FILE {file}: {type(exc).__name__}: {exc}"]) from None
    # The accounts of the file and of PAYMENTS_ACCOUNTS together: one may add to the other.
    file_accounts = config_accounts.account_ids(values.get(config_accounts.ACCOUNTS, ""))
    values.update({k: v for k, v in env.items()
                   if k.startswith(("BKASH_", "PAYMENTS_", "MONETIX_"))})
    timeout = values.get("BKASH_TIMEOUT_SECONDS", "30")
    bkash_accounts, monetix_accounts, account_problems = config_accounts.load_accounts(
        values, file_accounts, timeout=float(timeout) if _positive(timeout) else 30.0)

    problems = [f"{name} is not set" for name in _REQUIRED if not values.get(name)]
    problems += _link_secret_problems(values) + account_problems
    for name in ("BKASH_BASE_URL", "PAYMENTS_CALLBACK_BASE_URL", "PAYMENTS_RESULT_PAGE_URL",
                 "BKASH_REFUND_V2_BASE_URL"):
        url = values.get(name)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            problems.append(f"{name} must be an absolute http(s) URL")
    if values.get("MONETIX_PROJECT_ID") and not values.get("MONETIX_SECRET_KEY"):
        problems.append("MONETIX_SECRET_KEY is not set (required with MONETIX_PROJECT_ID)")
    if values.get("BKASH_REFUND_API", "v1") not in ("v1", "v2"):
        problems.append("BKASH_REFUND_API must be v1 (the default: /tokenized/checkout/payment/"
                        "refund) or v2 (/v2/tokenized-checkout/refund/...)")
    for name in ("MONETIX_BASE_URL", "MONETIX_PAYMENT_PAGE_URL"):
        url = values.get(name)
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
            problems.append(f"{name} must be an absolute http(s) URL")
    problems += _token_store_problems(values)
    notify_endpoints, notify_timings, notify_problems = config_notify.load_notify(values)
    problems += notify_problems
    numbers = {"BKASH_TIMEOUT_SECONDS": float, "PAYMENTS_MAX_AMOUNT_POISHA": int,
               "MONETIX_PROJECT_ID": int, "BKASH_TOKEN_REFRESH_AFTER_SECONDS": float,
               "BKASH_TOKEN_LEASE_SECONDS": float, "PAYMENTS_WORKER_CACHE_SIZE": int,
               "BKASH_TOKEN_BUDGET_WINDOW_SECONDS": float,
               "PAYMENTS_STICKY_TIMEOUT_SECONDS": float, "PAYMENTS_STALL_AFTER_SECONDS": float,
               "PAYMENTS_STALL_CHECK_SECONDS": float}
    for name, kind in numbers.items():
        if name in values:
            try:
                if kind(values[name]) <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"{name} must be a positive number")
    problems += _stall_stage_problems(values)
    if problems:
        raise ConfigError(problems)

    # BKASH_REFUND_V2_BASE_URL: default BKASH_BASE_URL without its /v1.2.0-beta ([INF]).
    paths = BkashPaths(**{field: values[name] for name, field in (
        ("BKASH_VOID_PATH", "void"), ("BKASH_REFUND_API", "refund_api"),
        ("BKASH_REFUND_V2_BASE_URL", "refund_v2_base_url")) if values.get(name)})
    monetix = None
    if values.get("MONETIX_PROJECT_ID"):
        gate = {"project_id": int(values["MONETIX_PROJECT_ID"]),
                "secret_key": values["MONETIX_SECRET_KEY"],
                "timeout_seconds": float(values.get("BKASH_TIMEOUT_SECONDS", 30))}
        for name, field in (("MONETIX_BASE_URL", "base_url"), ("MONETIX_SALE_PATH", "sale_path"),
                            ("MONETIX_CLARIFICATION_PATH", "clarification_path"),
                            ("MONETIX_STATUS_PATH", "status_path"),
                            ("MONETIX_REFUND_PATH", "refund_path")):
            if values.get(name):
                gate[field] = values[name]
        page = {"project_id": gate["project_id"], "secret_key": gate["secret_key"]}
        if values.get("MONETIX_PAYMENT_PAGE_URL"):
            page["base_url"] = values["MONETIX_PAYMENT_PAGE_URL"]
        monetix = {"gate": gate, "payment_page": page}
    token_file = values.get("BKASH_TOKEN_CACHE_FILE")
    if token_file is None:
        # On by default for the worker: restarts and sibling processes reuse one token, so bKash's
        # two-token-calls-an-hour limit holds (§3.2). Keyed by credential set; empty disables it.
        key = hashlib.sha256("|".join(values.get(n, "") for n in (
            "BKASH_BASE_URL", "BKASH_APP_KEY", "BKASH_USERNAME")).encode()).hexdigest()[:16]
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        token_file = str(cache / "bkash-temporal-payments" / f"token-{key}.json")
    try:
        settings = Settings(
            monetix=monetix, bkash_accounts=bkash_accounts, monetix_accounts=monetix_accounts,
            bkash_token_cache_file=token_file or None,
            bkash_token_store=values.get("BKASH_TOKEN_STORE") or ("file" if token_file else "memory"),
            bkash_token_refresh_after_seconds=float(values.get(
                "BKASH_TOKEN_REFRESH_AFTER_SECONDS", 50 * 60)),
            bkash_token_lease_seconds=float(values["BKASH_TOKEN_LEASE_SECONDS"])
            if values.get("BKASH_TOKEN_LEASE_SECONDS") else None,
            bkash_token_budget_window_seconds=float(values.get(
                "BKASH_TOKEN_BUDGET_WINDOW_SECONDS", 3600)),
            bkash=BkashCredentials(**{field: values[name] for name, field in _BKASH_ENV.items()}),
            bkash_paths=paths,
            bkash_timeout_seconds=float(values.get("BKASH_TIMEOUT_SECONDS", 30)),
            callback_base_url=values["PAYMENTS_CALLBACK_BASE_URL"].rstrip("/"),
            link_secret=values[LINK_SECRET],
            result_page_url=values.get("PAYMENTS_RESULT_PAGE_URL"),
            task_queue=values.get("PAYMENTS_TASK_QUEUE", TASK_QUEUE),
            max_amount_poisha=int(values.get("PAYMENTS_MAX_AMOUNT_POISHA",
                                             DEFAULT_MAX_AMOUNT_POISHA)),
            notify_endpoints=notify_endpoints, notify_timings=notify_timings,
            reconciliation_dir=values.get(REPORT_DIR_SETTING) or DEFAULT_REPORT_DIR,
            worker_cache_size=int(values.get("PAYMENTS_WORKER_CACHE_SIZE", 1000)),
            sticky_timeout_seconds=float(values.get("PAYMENTS_STICKY_TIMEOUT_SECONDS", 3.0)),
            stall_stages=_stall_stages(values),
            stall_after_seconds=float(values.get("PAYMENTS_STALL_AFTER_SECONDS", 900)),
            stall_check_seconds=float(values.get("PAYMENTS_STALL_CHECK_SECONDS", 60)),
        )
    except ValidationError as exc:
        raise ConfigError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                           for e in exc.errors(include_input=False)]) from None
    problems = config_accounts.shared_credentials(
        {a: s.credentials for a, s in settings.bkash_by_account().items()})
    problems += config_accounts.shared_projects(
        {a: m.project_id for a, m in settings.monetix_by_account().items()})
    if problems:
        raise ConfigError(problems)
    return settings


def _stall_stage_problems(values: Mapping[str, str]) -> list[str]:
    from merchant_client.stalled import WATCHABLE_STAGES

    unknown = [s for s in _stall_stages(values) if s not in WATCHABLE_STAGES]
    if not unknown:
        return []
    return [f"PAYMENTS_STALL_STAGES: {', '.join(unknown)} is not a stage a payment or refund "
            f"ledger rests in; use some of {', '.join(sorted(WATCHABLE_STAGES))}"]


def _stall_stages(values: Mapping[str, str]) -> tuple[str, ...]:
    from merchant_client.stalled import DEFAULT_STAGES

    raw = values.get("PAYMENTS_STALL_STAGES")
    if raw is None:
        return DEFAULT_STAGES
    return tuple(s.strip().upper() for s in raw.split(",") if s.strip())


def _positive(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


async def connect_temporal(**overrides) -> Client:
    """The merchant client's connection (temporalio.envconfig and the pydantic data converter)."""
    from merchant_client import connect

    return await connect(**overrides)


def _token_store_problems(values: Mapping[str, str]) -> list[str]:
    """BKASH_TOKEN_STORE names where the token and its budget live; its value may hold a Redis
    password, so no message repeats it."""
    store = values.get("BKASH_TOKEN_STORE")
    if not store or store == "memory":
        return []
    if values.get("BKASH_TOKEN_CACHE_FILE") == "":
        return [f"BKASH_TOKEN_STORE={'file' if store == 'file' else '<redis URL>'} needs the "
                "per-host token file: leave BKASH_TOKEN_CACHE_FILE unset (the default path) or "
                "set it to a path (empty switches the file off)"]
    if store == "file":
        return []
    parts = urlsplit(store)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return ["BKASH_TOKEN_STORE must be file (the default), memory, or a redis://host:port/db "
                "or rediss:// (TLS) URL"]
    try:
        parts.port
    except ValueError:
        return ["BKASH_TOKEN_STORE: the Redis URL's port is not a number"]
    try:
        import redis  # noqa: F401
    except ImportError:
        return ["BKASH_TOKEN_STORE is a Redis URL but the redis package is not installed"]
    return []


def _link_secret_problems(values: Mapping[str, str]) -> list[str]:
    secret = values.get(LINK_SECRET)
    if not secret:
        return [f"{LINK_SECRET} is not set (the secret of customers' result links, the same for "
                "the worker and the endpoint; make one with: python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\")"]
    if len(secret) < MIN_LINK_SECRET_CHARS:
        return [f"{LINK_SECRET} must be at least {MIN_LINK_SECRET_CHARS} characters"]
    return []


def _previous_link_secret(values: Mapping[str, str],
                          problems: list[str]) -> tuple[SecretStr | None, datetime | None]:
    """Rotation: links made with the previous secret stay valid until a stated instant, no later
    (a previous secret without an end would never retire)."""
    previous = values.get(f"{LINK_SECRET}_PREVIOUS")
    until = values.get(f"{LINK_SECRET}_PREVIOUS_UNTIL")
    if not previous and not until:
        return None, None
    if not previous or not until:
        problems.append(f"{LINK_SECRET}_PREVIOUS and {LINK_SECRET}_PREVIOUS_UNTIL go together "
                        "(the previous secret and the instant it stops being accepted)")
        return None, None
    try:
        end = datetime.fromisoformat(until)
        if end.tzinfo is None:
            raise ValueError
    except ValueError:
        problems.append(f"{LINK_SECRET}_PREVIOUS_UNTIL must be an ISO 8601 instant with a time "
                        "zone, e.g. 2026-05-01T12:00:00+06:00")
        return None, None
    return SecretStr(previous), end


class EndpointSettings(BaseModel):
    """What the merchant endpoint needs besides the Temporal connection: the Monetix projects whose
    callbacks it verifies (their signing keys), the secret of customers' result links, and where
    customers land. No bKash secret."""

    link_secret: SecretStr
    link_secret_previous: SecretStr | None = None
    link_secret_previous_until: datetime | None = None
    redirect_signature_rule: SignatureRule = SignatureRule.ADVISORY
    monetix_projects: dict[int, SecretStr] = {}
    # Each project's merchant account ("default": MONETIX_PROJECT_ID), to route its callbacks.
    monetix_accounts: dict[int, str] = {}
    result_page_url: str | None = None


def load_endpoint_settings(env: Mapping[str, str] | None = None) -> EndpointSettings:
    env = dict(os.environ if env is None else env)
    values: dict[str, str] = {}
    if env.get("PAYMENTS_CONFIG_FILE"):
        try:
            values.update(_flatten_toml(Path(env["PAYMENTS_CONFIG_FILE"])))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError([f"PAYMENTS_CONFIG_FILE: {type(exc).__name__}"]) from None
    file_accounts = config_accounts.account_ids(values.get(config_accounts.ACCOUNTS, ""))
    values.update({k: v for k, v in env.items() if k.startswith(("PAYMENTS_", "MONETIX_"))})
    problems = _link_secret_problems(values)
    # Every account's Monetix project (an account with bKash only needs nothing here).
    _, monetix_accounts, account_problems = config_accounts.load_accounts(
        values, file_accounts, providers=("MONETIX",), every_account_configured=False)
    problems += account_problems
    previous, previous_until = _previous_link_secret(values, problems)
    rule = values.get("PAYMENTS_BKASH_REDIRECT_SIGNATURE", SignatureRule.ADVISORY.value)
    if rule not in {r.value for r in SignatureRule}:
        problems.append("PAYMENTS_BKASH_REDIRECT_SIGNATURE must be advisory (the default) or "
                        "strict")
    url = values.get("PAYMENTS_RESULT_PAGE_URL")
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        problems.append("PAYMENTS_RESULT_PAGE_URL must be an absolute http(s) URL")
    projects: dict[int, SecretStr] = {}
    project = values.get("MONETIX_PROJECT_ID")
    if project:
        if not project.isdigit() or int(project) <= 0:
            problems.append("MONETIX_PROJECT_ID must be a positive number")
        elif not values.get("MONETIX_SECRET_KEY"):
            problems.append("MONETIX_SECRET_KEY is not set (required with MONETIX_PROJECT_ID)")
        else:
            projects[int(project)] = SecretStr(values["MONETIX_SECRET_KEY"])
    accounts = {project: DEFAULT_ACCOUNT for project in projects}
    for account, monetix in monetix_accounts.items():
        gate = monetix["gate"]
        if "project_id" in gate and "secret_key" in gate:
            projects[gate["project_id"]] = SecretStr(gate["secret_key"])
            accounts.setdefault(gate["project_id"], account)
    problems += config_accounts.shared_projects(
        {**({DEFAULT_ACCOUNT: int(project)} if project and project.isdigit() else {}),
         **{a: m["gate"]["project_id"] for a, m in monetix_accounts.items()
            if "project_id" in m["gate"]}})
    if problems:
        raise ConfigError(problems)
    return EndpointSettings(link_secret=values[LINK_SECRET], link_secret_previous=previous,
                            link_secret_previous_until=previous_until,
                            redirect_signature_rule=SignatureRule(rule),
                            monetix_projects=projects, monetix_accounts=accounts,
                            result_page_url=url or None)
