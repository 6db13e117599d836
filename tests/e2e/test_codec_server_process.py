"""`python -m codec_server` as its own process: refuses to start without a token (naming the
setting), serves /decode with the token, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
from pathlib import Path

import httpx

from embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


async def test_the_codec_server_runs_as_its_own_process():
    env = {**os.environ, "PAYMENTS_CODEC_TOKEN": ""}
    port = free_port()
    bad = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codec_server", "--port", str(port), cwd=ROOT, env=env,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(bad.communicate(), 60)
    assert bad.returncode != 0 and b"PAYMENTS_CODEC_TOKEN must be set" in err
    token = secrets.token_urlsafe(32)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codec_server", "--port", str(port), cwd=ROOT,
        env={**env, "PAYMENTS_CODEC_TOKEN": token}, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            body = '{"payloads": []}'
            assert (await http.post(f"http://127.0.0.1:{port}/decode", content=body)
                    ).status_code == 401
            ok = await http.post(f"http://127.0.0.1:{port}/decode", content=body,
                                 headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert token.encode() not in err
