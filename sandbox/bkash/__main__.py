"""Run the bKash sandbox standalone: ``python -m sandbox.bkash --host 127.0.0.1 --port 8081``.

Every setting also reads an environment variable (BKASH_SANDBOX_APP_KEY, ...), so credentials
need not appear on a command line.
"""

from __future__ import annotations

import argparse
import os

from .app import create_app
from .config import BkashSandboxConfig

_DEFAULTS = BkashSandboxConfig()


def _env(name: str, default: object) -> object:
    return os.environ.get(f"BKASH_SANDBOX_{name}", default)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox.bkash",
                                description="Local bKash Tokenized Checkout (Auth & Capture) sandbox.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", 8081)))  # type: ignore[arg-type]
    p.add_argument("--app-key", default=_env("APP_KEY", _DEFAULTS.app_key))
    p.add_argument("--app-secret", default=_env("APP_SECRET", _DEFAULTS.app_secret))
    p.add_argument("--username", default=_env("USERNAME", _DEFAULTS.username))
    p.add_argument("--password", default=_env("PASSWORD", _DEFAULTS.password))
    p.add_argument("--api-version", default=_env("API_VERSION", _DEFAULTS.api_version))
    p.add_argument("--public-base-url", default=_env("PUBLIC_BASE_URL", None),
                   help="base URL of the hosted page in bkashURL (default: the request's base URL)")
    p.add_argument("--token-calls-per-hour", type=int,
                   default=int(_env("TOKEN_CALLS_PER_HOUR", _DEFAULTS.token_calls_per_hour)),  # type: ignore[arg-type]
                   help="grant+refresh calls allowed per rolling hour before lockout (0 = unlimited)")
    p.add_argument("--lockout-seconds", type=float,
                   default=float(_env("LOCKOUT_SECONDS", _DEFAULTS.lockout_seconds)))  # type: ignore[arg-type]
    p.add_argument("--token-window-seconds", type=float,
                   default=float(_env("TOKEN_WINDOW_SECONDS", _DEFAULTS.token_window_seconds)),  # type: ignore[arg-type]
                   help="the rolling window those calls are counted in (bKash: 3600; shorter "
                        "only for tests, with the worker's BKASH_TOKEN_BUDGET_WINDOW_SECONDS)")
    p.add_argument("--settle-error-envelope", choices=["statusCode", "errorCode"],
                   default=_env("SETTLE_ERROR_ENVELOPE", _DEFAULTS.settle_error_envelope))
    p.add_argument("--query-reports-page-outcome", action="store_true",
                   default=_env("QUERY_REPORTS_PAGE_OUTCOME", "") in ("1", "true", "yes"),
                   help="query answers Cancelled/Failed after a customer cancel/failure, not Initiated")
    hold = _env("AUTHORIZATION_HOLD_SECONDS", None)
    p.add_argument("--authorization-hold-seconds", type=float,
                   default=float(hold) if hold else None,  # type: ignore[arg-type]
                   help="Authorized payments not captured/voided within this lapse to Cancelled")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> BkashSandboxConfig:
    return BkashSandboxConfig(
        app_key=args.app_key, app_secret=args.app_secret, username=args.username,
        password=args.password, api_version=args.api_version, public_base_url=args.public_base_url,
        token_calls_per_hour=args.token_calls_per_hour, lockout_seconds=args.lockout_seconds,
        token_window_seconds=args.token_window_seconds,
        settle_error_envelope=args.settle_error_envelope,
        query_reports_page_outcome=args.query_reports_page_outcome,
        authorization_hold_seconds=args.authorization_hold_seconds)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    uvicorn.run(create_app(config_from(args)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
