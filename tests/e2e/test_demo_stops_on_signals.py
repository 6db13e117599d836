"""`make demo` stops everything it started on SIGTERM and SIGINT (the dev server subprocess, the
sandboxes, the endpoint, the worker), and `--keep` prints what another shell exports so
`starter.py` reaches the running demo; its payload key is 0600 beside the dev server's database and
its Web UI decodes through the codec server (README "Customer data")."""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

import embedded
from embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
PLAIN_ID = re.compile(r"^[A-Za-z0-9-]+$")


class Demo:
    """demo.py as a subprocess on free ports, its output read line by line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.temporal_port, self.ui_port = free_port(), free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "demo.py", "--db", str(tmp_path / "temporal.db"),
             "--temporal-port", str(self.temporal_port), "--ui-port", str(self.ui_port), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
            # As `make demo` on a fresh machine: no payload key set (the demo makes its own).
            env={k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_ENCRYPTION")})
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "demo ended early:\n" + "\n".join(self.lines)
            self.lines.append(line)

    def url_port(self, label: str) -> int:
        [line] = [line for line in self.lines if line.startswith(label)]
        return int(line.rsplit(":", 1)[1])

    def ports(self) -> list[int]:
        return [self.temporal_port, self.ui_port, *(self.url_port(label) for label in (
            "bKash sandbox:", "Monetix sandbox:", "merchant endpoint:"))]

    def stop(self, signum: int, timeout: float = 90) -> int:
        started = descendants(self.proc.pid)
        assert any("temporal" in cmdline(pid) and "start-dev" in cmdline(pid) for pid in started)
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout)
        self.wait_for_end()
        survivors = [(pid, cmdline(pid)) for pid in started if alive(pid)]
        assert not survivors, survivors
        return code

    def wait_for_end(self) -> None:
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                with_no_error(os.kill, pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()


def with_no_error(fn, *args) -> None:
    try:
        fn(*args)
    except OSError:
        pass


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def port_free(port: int) -> bool:
    """Nothing listens and a new server can bind it (closed connections may linger in TIME_WAIT,
    which servers' SO_REUSEADDR ignores)."""
    return embedded._port_free(port)


def starter(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def check_codec_wiring(demo: Demo, data_dir: Path, address: str, workflow_id: str) -> None:
    """The key file 0600 beside the database; the Web UI's codec endpoint is the codec server's
    /t/<token> URL, and a real history payload posted there as the UI posts it comes back decoded."""
    key_file = data_dir / "payload-keys"
    assert (data_dir / "temporal.db").exists() and key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, oct(key_file.stat().st_mode)
    [codec_url] = [line.split()[2] for line in demo.lines if line.startswith("codec server:")]
    token = (data_dir / "codec-token").read_text().strip()
    ui = f"http://localhost:{demo.ui_port}"
    settings = httpx.get(f"{ui}/api/v1/settings", timeout=30).json()
    endpoint = settings["Codec"]["Endpoint"]
    assert endpoint == f"{codec_url}/t/{token}", settings["Codec"]

    shown = subprocess.run([str(Path(sys.executable).parent / "temporal"), "workflow", "show",
                            "-w", workflow_id, "--address", address, "--output", "json"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    started = json.loads(shown.stdout)["events"][0]["workflowExecutionStartedEventAttributes"]
    [payload] = started["input"]["payloads"]
    assert base64.b64decode(payload["metadata"]["encoding"]) == b"binary/encrypted"
    answer = httpx.post(f"{endpoint}/decode", json={"payloads": [payload]}, timeout=30,
                        headers={"Origin": ui, "X-Namespace": "default"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == ui
    [plain] = answer.json()["payloads"]
    assert base64.b64decode(plain["metadata"]["encoding"]) == b"json/plain"
    request = json.loads(base64.b64decode(plain["data"]))
    assert workflow_id.removeprefix("monetix-") in json.dumps(request), request


def test_keep_prints_the_exports_starter_needs_and_sigterm_stops_everything(tmp_path):
    demo = Demo(tmp_path, "--keep")
    try:
        demo.wait_for("--keep: everything stays up", timeout=240)
        exports = dict(shlex.split(line.strip())[1].split("=", 1) for line in demo.lines
                       if line.strip().startswith("export "))
        assert set(exports) >= {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
        assert exports["TEMPORAL_ADDRESS"].endswith(f":{demo.temporal_port}")
        # Another shell: only what the demo printed, no provider setting at all.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("BKASH_", "MONETIX_", "PAYMENTS_", "TEMPORAL_"))}
        env.update(exports)
        [status] = [line.split()[-1] for line in demo.lines if "starter.py status " in line]
        shown = starter(env, "status", status)
        assert shown.returncode == 0 and '"stage": "CAPTURED"' in shown.stdout, shown
        listed = starter(env, "list", "--provider", "monetix")
        assert listed.returncode == 0, listed
        ids = re.findall(r'"(monetix-DEMO-[^"]*)"', listed.stdout)
        assert len(ids) >= 6 and all(PLAIN_ID.match(i) for i in ids), listed.stdout
        check_codec_wiring(demo, tmp_path, exports["TEMPORAL_ADDRESS"], ids[0])
        ports = demo.ports()

        assert demo.stop(signal.SIGTERM) == 128 + signal.SIGTERM, "\n".join(demo.lines)
        assert [p for p in ports if not port_free(p)] == []
        assert any("SIGTERM: dev server, sandboxes, endpoint and worker are shut down" in line
                   for line in demo.lines)
    finally:
        demo.kill()


def test_sigint_in_the_middle_of_the_run_stops_everything(tmp_path):
    demo = Demo(tmp_path)
    try:
        demo.wait_for("merchant endpoint:", timeout=120)
        ports = demo.ports()
        time.sleep(1.5)  # payments in flight: worker polling, endpoint serving, sandboxes busy
        assert demo.stop(signal.SIGINT) == 128 + signal.SIGINT, "\n".join(demo.lines)
        assert [p for p in ports if not port_free(p)] == []
    finally:
        demo.kill()
