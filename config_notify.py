"""The worker's notification endpoints (README "Notifications"), from the environment or the TOML file.

    PAYMENTS_NOTIFY_URL=https://orders.example.com/hooks/payments    # one endpoint, id "default"
    PAYMENTS_NOTIFY_SECRETS=<current>[,<previous>]                   # rotation: both sign

    PAYMENTS_NOTIFY_ENDPOINTS=orders,ledger                          # or several, by id
    PAYMENTS_NOTIFY__ORDERS__URL=...   PAYMENTS_NOTIFY__ORDERS__SECRETS=...

    PAYMENTS_NOTIFY_BUDGET_SECONDS=259200        # how long an event is retried (3 days)
    PAYMENTS_NOTIFY_FIRST_RETRY_SECONDS=30       # then doubling, up to
    PAYMENTS_NOTIFY_MAX_RETRY_SECONDS=3600
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import SecretStr

from contracts.notifications import DEFAULT_BUDGET, DEFAULT_FIRST_RETRY, DEFAULT_MAX_RETRY_INTERVAL
from providers.webhooks import LOOPBACK, WebhookEndpoint

ENDPOINTS = "PAYMENTS_NOTIFY_ENDPOINTS"
ENDPOINT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MIN_SECRET = 24
TIMINGS = {"PAYMENTS_NOTIFY_BUDGET_SECONDS": DEFAULT_BUDGET,
           "PAYMENTS_NOTIFY_FIRST_RETRY_SECONDS": DEFAULT_FIRST_RETRY,
           "PAYMENTS_NOTIFY_MAX_RETRY_SECONDS": DEFAULT_MAX_RETRY_INTERVAL}


def load_notify(values: Mapping[str, str]) -> tuple[dict[str, WebhookEndpoint],
                                                      dict[str, timedelta], list[str]]:
    """The endpoints by id, the timings by setting name, and every problem (naming the setting)."""
    problems: list[str] = []
    named: dict[str, tuple[str, str]] = {}
    if values.get("PAYMENTS_NOTIFY_URL") or values.get("PAYMENTS_NOTIFY_SECRETS"):
        named["default"] = ("PAYMENTS_NOTIFY_URL", "PAYMENTS_NOTIFY_SECRETS")
    for raw in filter(None, (p.strip() for p in values.get(ENDPOINTS, "").split(","))):
        if not ENDPOINT_ID.fullmatch(raw):
            problems.append(f"{ENDPOINTS}: {raw[:40]!r} must be 1-32 lower-case letters, digits, "
                            "'_' or '-'")
            continue
        prefix = f"PAYMENTS_NOTIFY__{raw.upper().replace('-', '_')}__"
        named[raw] = (prefix + "URL", prefix + "SECRETS")
    endpoints: dict[str, WebhookEndpoint] = {}
    for endpoint_id, (url_name, secrets_name) in named.items():
        url = values.get(url_name, "")
        parts = urlsplit(url)
        if not url:
            problems.append(f"{url_name} is not set (the endpoint {endpoint_id!r} needs a URL)")
        elif parts.scheme != "https" and not (parts.scheme == "http"
                                              and parts.hostname in LOOPBACK):
            problems.append(f"{url_name} must be an https:// URL (http:// only to a loopback "
                            "address, for a local receiver)")
        secrets = [s.strip() for s in values.get(secrets_name, "").split(",") if s.strip()]
        if not secrets:
            problems.append(f"{secrets_name} is not set (the endpoint {endpoint_id!r} signs "
                            "every event with it)")
        elif any(len(s) < MIN_SECRET for s in secrets):
            problems.append(f"{secrets_name}: each secret must be at least {MIN_SECRET} "
                            "characters (e.g. python -c 'import secrets; "
                            "print(secrets.token_urlsafe(32))')")
        if url and secrets:
            endpoints[endpoint_id] = WebhookEndpoint(id=endpoint_id, url=url,
                                                     secrets=[SecretStr(s) for s in secrets])
    timings: dict[str, timedelta] = {}
    for name, default in TIMINGS.items():
        raw = values.get(name)
        try:
            seconds = float(raw) if raw else default.total_seconds()
            if seconds <= 0:
                raise ValueError
            timings[name] = timedelta(seconds=seconds)
        except ValueError:
            problems.append(f"{name} must be a positive number of seconds")
    return endpoints, timings, problems
