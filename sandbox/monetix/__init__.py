"""A local stand-in for Monetix (ECOMMPAY white-label) bKash purchases, faithful to
/work/shared/reference/monetix-gate.md: Gate sale / clarification / refund / status, signed callbacks
with retries, the Payment Page, the customer's bKash payment, a ledger and fault injection.

    app = create_app(MonetixSandboxConfig(default_callback_url="http://127.0.0.1:8000/monetix/callback"))
    python -m sandbox.monetix --host 127.0.0.1 --port 8082
"""

from .app import create_app
from .config import MonetixSandboxConfig

__all__ = ["MonetixSandboxConfig", "create_app"]
