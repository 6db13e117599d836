"""python -m codec_server --port 8234   (PAYMENTS_ENCRYPTION_KEYS[_FILE], PAYMENTS_CODEC_TOKEN,
PAYMENTS_CODEC_CORS_ORIGINS = the Web UI origins, comma-separated)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import runtime_exit
from codec_server.app import create_app
from embedded import serve_asgi
from merchant_client.encryption import EncryptionConfigError, load_keys

TOKEN_SETTING = "PAYMENTS_CODEC_TOKEN"
ORIGINS_SETTING = "PAYMENTS_CODEC_CORS_ORIGINS"
DEFAULT_ORIGINS = "http://localhost:8233,http://127.0.0.1:8233"


async def main() -> None:
    p = argparse.ArgumentParser(prog="python -m codec_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8234)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keys = load_keys()
    if keys is None:
        raise EncryptionConfigError("PAYMENTS_ENCRYPTION=off: a codec server has nothing to do")
    token = os.environ.get(TOKEN_SETTING, "")
    if len(token) < 24:
        raise EncryptionConfigError(f"{TOKEN_SETTING} must be set to at least 24 characters (make "
                                    "one with: python -c \"import secrets; "
                                    "print(secrets.token_urlsafe(32))\")")
    origins = [o.strip() for o in os.environ.get(ORIGINS_SETTING, DEFAULT_ORIGINS).split(",")
               if o.strip()]
    app = create_app(keys, token, allowed_origins=origins)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # drain and exit 0, as the worker does
        loop.add_signal_handler(sig, stop.set)
    async with serve_asgi(app, host=args.host, port=args.port) as url:
        logging.info("codec server on %s (origins %s)", url, ", ".join(origins))
        await stop.wait()


if __name__ == "__main__":
    runtime_exit.run(main())
