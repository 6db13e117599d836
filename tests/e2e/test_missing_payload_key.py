"""README "Customer data": a process told to encrypt (PAYMENTS_ENCRYPTION=on) without a key stops at
once with one message naming the key settings, no traceback; a worker that would write plain text
(the default `auto` without a key, or `off`) says so in one WARNING at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from embedded import free_port
from merchant_client.encryption import new_key_line

ROOT = Path(__file__).resolve().parents[2]
PLAIN = "payload encryption is OFF"


def env(**extra: str) -> dict[str, str]:
    """Everything the worker and the endpoint need to get as far as connecting, but no key; the
    Temporal address answers nothing (a process that would connect fails there, not earlier)."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("BKASH_", "MONETIX_", "PAYMENTS_", "TEMPORAL_"))}
    base.update(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}", BKASH_BASE_URL="http://127.0.0.1:9",
                BKASH_APP_KEY="app-key", BKASH_APP_SECRET="app-secret", BKASH_USERNAME="user",
                BKASH_PASSWORD="password", PAYMENTS_CALLBACK_BASE_URL="http://127.0.0.1:9",
                PAYMENTS_LINK_SECRET="a-link-secret-of-enough-length-000000000",
                BKASH_TOKEN_CACHE_FILE="", **extra)
    return base


def run(*argv: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env(**extra),
                          capture_output=True, text=True, timeout=60)


def test_encryption_on_without_a_key_stops_the_worker_and_the_endpoint_naming_the_setting():
    for argv in (["worker.py"], ["-m", "endpoint", "--port", str(free_port())]):
        out = run(*argv, PAYMENTS_ENCRYPTION="on")
        text = out.stdout + out.stderr
        assert out.returncode != 0, (argv, text)
        assert "Traceback" not in text, (argv, text)
        naming = [line for line in text.splitlines()
                  if "PAYMENTS_ENCRYPTION_KEYS_FILE" in line and "PAYMENTS_ENCRYPTION_KEYS" in line]
        assert len(naming) == 1 and "no payload encryption key" in naming[0], (argv, text)


def test_a_worker_that_would_write_plain_text_warns_once_at_start():
    for switch in ("auto", "off"):
        out = run("worker.py", PAYMENTS_ENCRYPTION=switch)  # ends at the unreachable Temporal
        warnings = [line for line in out.stderr.splitlines() if PLAIN in line]
        assert len(warnings) == 1 and " WARNING " in warnings[0], (switch, out.stderr)
        assert "PAYMENTS_ENCRYPTION=on" in warnings[0]
    keyed = run("worker.py", PAYMENTS_ENCRYPTION_KEYS=new_key_line("k1"))
    assert "merchant accounts" in keyed.stderr and PLAIN not in keyed.stderr, keyed.stderr


def test_an_unreachable_temporal_stops_the_worker_and_the_endpoint_in_one_line():
    for argv in (["worker.py"], ["-m", "endpoint", "--port", str(free_port())]):
        out = run(*argv, PAYMENTS_ENCRYPTION_KEYS=new_key_line("k1"))
        assert out.returncode == 1, (argv, out.stderr)
        assert "Traceback" not in out.stderr, (argv, out.stderr)
        [line] = [x for x in out.stderr.splitlines() if x.startswith("error: ")]
        assert "cannot reach Temporal at 127.0.0.1:" in line and "TEMPORAL_ADDRESS" in line
