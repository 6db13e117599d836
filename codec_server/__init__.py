"""The codec server: Temporal's remote codec protocol (POST /encode, POST /decode) over the
project's payload encryption, so the Web UI and the stock `temporal` CLI can show decoded payloads
to whoever holds the codec token. See app.py."""

from codec_server.app import create_app

__all__ = ["create_app"]
