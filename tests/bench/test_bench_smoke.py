"""`make bench` in miniature: two payments per phase, one concurrency level, the whole stack (dev
server, a separate worker process, sandboxes, endpoint), run once for the tests below. Checks the
report's structure and the billable-action counts of the payment and refund paths only — a
benchmark's timings are never asserted in a test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("bkash", "monetix")
PATHS = ("workflow", "floor", "direct")


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--payments", "2", "--concurrency", "1", "--warmup", "1",
         "--no-chart", "--out", str(out), "--label", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [file] = out.glob("bench-*-smoke.json")
    return run, json.loads(file.read_text()), out


def test_bench_runs_every_path_and_reports_the_figures(bench_run):
    run, report, out = bench_run
    for heading in ("pay/s", "worker CPU ms/pay", "wf÷floor", "wf−direct", "USD / 1M payments"):
        assert heading in run.stdout

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
    assert not list(out.glob(".bench-*")), "the run's scratch folder (dev server db) is removed"


def test_bench_counts_the_billable_actions_of_each_refund_path(bench_run):
    run, report, _ = bench_run
    assert "Billable actions per refund path" in run.stdout and "USD / 1M refund paths" in run.stdout
    paths = {a["path"]: a for a in report["refund_actions_per_path"]}
    assert len(paths) == 4 and all(a["ok"] for a in paths.values()), paths
    one = paths["bKash refund: one partial refund (300.00 of 1000.00)"]
    # Counted from the ledger's own history: its start, reading the payment and the refund call,
    # the merchant's request (update-with-start) and wait, the window, the stages shown.
    assert one["workflow_id"].startswith("refunds-bkash-")
    assert one["actions"]["workflow start"] == 1
    assert one["actions"]["activity"] == 2 and one["actions"]["update"] == 2
    assert one["actions"]["timer"] >= 1 and one["actions"]["search attribute upsert"] >= 2
    assert one["total_actions"] == sum(one["actions"].values()) and one["events"] > 0
    two = paths["bKash refund: two refunds (300.00, then 200.00)"]
    assert two["refund_lines_at_provider"] == 2
    assert two["actions"]["activity"] == one["actions"]["activity"] + 1
    assert two["actions"]["update"] == one["actions"]["update"] + 2
    lost = paths["bKash refund: answer lost → resolved by refund status"]
    # The lost answer costs one more activity attempt (the retry asks refund status first).
    assert lost["reconciled"] == 1 and lost["refund_lines_at_provider"] == 1
    assert lost["actions"]["activity"] == one["actions"]["activity"] + 1
    monetix = paths["Monetix refund: 300.00 by callback"]
    assert monetix["workflow_id"].startswith("refunds-monetix-")
    assert monetix["actions"]["update"] == one["actions"]["update"] + 1  # the refund callback
