"""The embedded default's payload encryption (README "Customer data: encrypted histories"): a local
key made on the first run and kept 0600 beside the dev server's database, and the codec server the
Web UI decodes through, so `make demo ARGS=--keep` shows readable payloads in the browser while the
database and every raw history hold only ciphertext."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from codec_server import create_app as create_codec_server
from embedded import pick_port, serve_asgi
from merchant_client.encryption import (
    KEYS_FILE_SETTING,
    KEYS_SETTING,
    SWITCH_SETTING,
    load_keys,
    new_key_line,
)


def _private_file(path: Path, make) -> str:
    """The file's content; on the first run it is made, readable by this user only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make() + "\n")
    return path.read_text().strip()


def ensure_local_key(data_dir: Path) -> Path | None:
    """Point this process (and what it starts) at the demo's key file, made on the first run;
    a key already configured (or PAYMENTS_ENCRYPTION=off) is left as it is."""
    if os.environ.get(KEYS_SETTING) or os.environ.get(KEYS_FILE_SETTING) or \
            (os.environ.get(SWITCH_SETTING) or "").lower() == "off":
        return None
    path = data_dir / "payload-keys"
    _private_file(path, lambda: new_key_line("demo-1"))
    os.environ[KEYS_FILE_SETTING] = str(path)
    return path


@dataclass
class Codec:
    url: str          # what the CLI's --codec-endpoint takes (with --codec-auth "Bearer <token>")
    ui_endpoint: str  # the Web UI's codec endpoint: the token in the path (the UI sends no header)
    token_file: Path


@contextlib.asynccontextmanager
async def codec_server(data_dir: Path, ui_port: int) -> AsyncIterator[Codec | None]:
    keys = load_keys()
    if keys is None:
        yield None
        return
    token_file = data_dir / "codec-token"
    token = _private_file(token_file, lambda: secrets.token_urlsafe(32))
    origins = [f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}"]
    app = create_codec_server(keys, token, allowed_origins=origins)
    async with serve_asgi(app, port=pick_port(8234)) as url:
        yield Codec(url=url, ui_endpoint=f"{url}/t/{token}", token_file=token_file)
