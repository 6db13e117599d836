"""`make bench ARGS="--scale N"` in miniature: 20 bKash payments parked at AUTHORIZED and 5 Monetix
purchases at AWAITING_TRANSACTION_ID on each path (payment workflows and floor), touched with a
cache of 100, settled in one burst, on the whole stack. Checks the report's shape and the sandboxes'
ledgers — never a timing. Without the kill -9 halfway: a payment whose provider call the kill cuts
waits out its activity timeout (over a minute), which the real run reports and a test must not wait
for."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^scale N=20 rss_mib=\d+ db_bytes_per_payment=\d+ settle_per_s=\d+\.\d "
                  r"floor_settle_per_s=\d+\.\d recovery_s=-$", re.MULTILINE)


def test_scale_parks_and_settles_every_payment_exactly_once(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "20", "--scale-no-kill", "--scale-sample", "3",
         "--scale-cache", "default,100", "--no-chart", "--out", str(tmp_path), "--label", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert LINE.search(run.stdout), run.stdout[-2000:]
    assert "Settle burst" in run.stdout and "RSS MiB by cache" in run.stdout

    [file] = tmp_path.glob("scale-*-smoke.json")
    [entry] = json.loads(file.read_text())["runs"]
    assert entry["n"] == 20 and set(entry["paths"]) == {"workflow", "floor"}
    for path in entry["paths"].values():
        assert path["park"]["parked"] == 25 and path["park"]["failed"] == 0
        assert path["park"]["bkash"] == 20 and path["park"]["monetix"] == 5
        assert path["settle"]["settled"] == 25 and path["settle"]["wrong_final_stage"] == 0
        assert path["park"]["worker_rss_mib_peak"] > 0
        assert set(path["settle"]["latency_s"]) >= {"p50", "p95", "p99"}
        assert path["park"]["history_parked"]["bkash"]["events"] > 0

    wf = entry["paths"]["workflow"]
    ledger = wf["ledger"]
    assert ledger["payments"] == ledger["exactly_once"] == 25 and ledger["violations"] == []
    # 3 of 4 bKash payments delivered (captured), 1 of 4 failed (voided); Monetix settled once.
    assert ledger["ledger_kinds"] == {"AUTHORIZE+CAPTURE": 15, "AUTHORIZE+VOID": 5,
                                      "CUSTOMER_PAID+SETTLED": 5}
    # Each payment's notification stream is part of its cost: open while it is held, closed after.
    assert wf["notification_streams_open"] >= 25 and wf["notification_streams_closed"] >= 25
    assert wf["park"]["history_parked"]["bkash"]["stream_events"] > 0
    [sweep] = wf["sweeps"]
    assert sweep["cache"] == 100 and sweep["touched"] == 25 and sweep["failed"] == 0
    assert not list(tmp_path.glob(".scale-*")), "the run's scratch folder (dev server db) is removed"
