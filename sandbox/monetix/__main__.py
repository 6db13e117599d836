"""Run the Monetix sandbox standalone: ``python -m sandbox.monetix --host 127.0.0.1 --port 8082``.

Every setting also reads an environment variable (MONETIX_SANDBOX_SECRET_KEY, ...), so keys need
not appear on a command line.
"""

from __future__ import annotations

import argparse
import os

from .app import create_app
from .config import MonetixSandboxConfig

_DEFAULTS = MonetixSandboxConfig()


def _env(name: str, default: object) -> object:
    return os.environ.get(f"MONETIX_SANDBOX_{name}", default)


def _project(text: str) -> tuple[int, str]:
    project, sep, key = text.partition("=")
    if not sep or not project.strip().isdigit() or not key:
        raise argparse.ArgumentTypeError(f"expected PROJECT_ID=SECRET_KEY, got {text!r}")
    return int(project), key


def _delays(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated seconds, e.g. 0.2,0.5,1; got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox.monetix",
                                description="Local Monetix (ECOMMPAY) Gate + Payment Page sandbox for bKash purchases.")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(_env("PORT", 8082)))  # type: ignore[arg-type]
    p.add_argument("--project-id", type=int, default=int(_env("PROJECT_ID", _DEFAULTS.project_id)))  # type: ignore[arg-type]
    p.add_argument("--secret-key", default=_env("SECRET_KEY", _DEFAULTS.secret_key))
    env_projects = [x for x in str(_env("OTHER_PROJECTS", "")).split(",") if x.strip()]
    p.add_argument("--other-project", type=_project, action="append",
                   default=[_project(x) for x in env_projects], metavar="PROJECT_ID=SECRET_KEY",
                   help="another project and its key (repeatable; env: comma-separated)")
    p.add_argument("--receiver-account", default=_env("RECEIVER_ACCOUNT", _DEFAULTS.receiver_account),
                   help="the bKash account shown in display_data")
    p.add_argument("--default-callback-url", default=_env("DEFAULT_CALLBACK_URL", None),
                   help="where callbacks go when a request has no merchant_callback_url")
    p.add_argument("--public-base-url", default=_env("PUBLIC_BASE_URL", None),
                   help="base URL the Payment Page's form posts to (default: the request's base URL)")
    p.add_argument("--callback-retry-delays", type=_delays,
                   default=_delays(str(_env("CALLBACK_RETRY_DELAYS",
                                            ",".join(str(d) for d in _DEFAULTS.callback_retry_delays)))),
                   help="seconds between callback attempts, comma-separated (compressed §4.1 schedule)")
    p.add_argument("--clarification-timeout-seconds", type=float,
                   default=float(_env("CLARIFICATION_TIMEOUT_SECONDS", _DEFAULTS.clarification_timeout_seconds)))  # type: ignore[arg-type]
    p.add_argument("--min-status-delay-seconds", type=float,
                   default=float(_env("MIN_STATUS_DELAY_SECONDS", _DEFAULTS.min_status_delay_seconds)))  # type: ignore[arg-type]
    p.add_argument("--signature-order", choices=["byte", "natural"],
                   default=_env("SIGNATURE_ORDER", _DEFAULTS.signature_order))
    p.add_argument("--amount-change-policy", choices=["accept", "decline"],
                   default=_env("AMOUNT_CHANGE_POLICY", _DEFAULTS.amount_change_policy),
                   help="a customer paying a different sum: success with it, or decline 20304 (§4.5)")
    p.add_argument("--sale-path", default=_env("SALE_PATH", _DEFAULTS.sale_path))
    p.add_argument("--refund-path", default=_env("REFUND_PATH", _DEFAULTS.refund_path))
    p.add_argument("--refund-processing-seconds", type=float,
                   default=float(_env("REFUND_PROCESSING_SECONDS", _DEFAULTS.refund_processing_seconds)),  # type: ignore[arg-type]
                   help="how long a refund stays processing before its result callback")
    p.add_argument("--merchant-refund-id-scope", choices=["project", "payment"],
                   default=_env("MERCHANT_REFUND_ID_SCOPE", _DEFAULTS.merchant_refund_id_scope),
                   help="where a merchant_refund_id must be unique (3230 on reuse)")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> MonetixSandboxConfig:
    return MonetixSandboxConfig(
        project_id=args.project_id, secret_key=args.secret_key, other_projects=dict(args.other_project),
        receiver_account=args.receiver_account, default_callback_url=args.default_callback_url,
        public_base_url=args.public_base_url, callback_retry_delays=args.callback_retry_delays,
        clarification_timeout_seconds=args.clarification_timeout_seconds,
        min_status_delay_seconds=args.min_status_delay_seconds, signature_order=args.signature_order,
        amount_change_policy=args.amount_change_policy, sale_path=args.sale_path,
        refund_path=args.refund_path, refund_processing_seconds=args.refund_processing_seconds,
        merchant_refund_id_scope=args.merchant_refund_id_scope)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = parse_args(argv)
    uvicorn.run(create_app(config_from(args)), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
