"""`make bench` in miniature: two payments per phase, one concurrency level, the whole stack (dev
server, a separate worker process, sandboxes, endpoint). Checks the report's structure only — a
benchmark's timings are never asserted in a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("bkash", "monetix")
PATHS = ("workflow", "floor", "direct")


def test_bench_runs_every_path_and_reports_the_figures(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--payments", "2", "--concurrency", "1", "--warmup", "1",
         "--no-chart", "--out", str(tmp_path), "--label", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for heading in ("pay/s", "worker CPU ms/pay", "wf÷floor", "wf−direct", "USD / 1M payments"):
        assert heading in run.stdout
    [file] = tmp_path.glob("bench-*-smoke.json")
    report = json.loads(file.read_text())

    assert {(p["kind"], p["path"]) for p in report["phases"]} == \
        {(k, p) for k in KINDS for p in PATHS}
    for phase in report["phases"]:
        assert phase["concurrency"] == 1 and phase["payments"] == 2 and phase["ok"] == 2
        assert phase["payments_per_s"] > 0
        for which in ("payment", "step"):
            assert set(phase["latency_ms"][which]) >= {"p50", "p95", "p99"}
        cpu = phase["cpu_ms_per_payment"]
        assert cpu["server"] is not None and cpu["driver"] is not None
        if phase["path"] == "direct":
            assert cpu["worker"] is None and phase["history"] == {}
        else:
            assert cpu["worker"] is not None and phase["worker_peak_rss_mib"] > 0
            history = phase["history"]
            assert history["events"] > 0 and history["billable_actions"] > 0
            assert {"workflow start", "activity", "update", "timer",
                    "search attribute upsert"} <= set(history["actions_by_type"])

    assert {(r["kind"], r["concurrency"]) for r in report["ratios"]} == {(k, 1) for k in KINDS}
    for ratio in report["ratios"]:
        assert set(ratio["workflow_div_floor"]) >= {"payments_per_s", "payment_p50", "worker_cpu"}
        assert set(ratio["workflow_minus_direct_ms"]) >= {"payment_p50", "step_p50"}

    paths = {a["path"]: a for a in report["actions_per_path"]}
    assert len(paths) == 5 and all(a["ok"] for a in paths.values())
    captured = paths["bKash: approved → delivered → captured"]
    assert captured["actions"]["workflow start"] == 1 and captured["total_actions"] >= 10
    assert not list(tmp_path.glob(".bench-*")), "the run's scratch folder (dev server db) is removed"
