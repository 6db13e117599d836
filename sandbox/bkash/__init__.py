"""A local stand-in for bKash Tokenized Checkout (sale and Auth & Capture), faithful to
/work/shared/reference/bkash-api.md, with a hosted page, a ledger and fault injection.

    app = create_app(BkashSandboxConfig(authorization_hold_seconds=600))
    python -m sandbox.bkash --host 127.0.0.1 --port 8081
"""

from .app import create_app
from .config import BkashSandboxConfig

__all__ = ["BkashSandboxConfig", "create_app"]
