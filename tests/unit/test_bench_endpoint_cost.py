"""`python -m bench --phase endpoint-cost` (the README's worst-case figures) runs on its own, without
Temporal, and reports every shape's answer and work. Structure only: timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_endpoint_cost_phase_reports_every_shape(tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench", "--phase", "endpoint-cost", "--out",
                          str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "worst request:" in run.stdout
    report = json.loads((tmp_path / "endpoint-cost.json").read_text())
    shapes = report["shapes"]
    assert shapes["long key above an array"]["answer"] == "400 key too long"
    assert shapes["flat array of zeros"]["answer"] == "400 too many fields"
    assert shapes["a real callback (signed)"]["answer"] == "verified"
    assert shapes["largest body that verifies (signed)"]["macs"] == 3
    for name, status in report["http"].items():
        assert status == (413 if "over the limit" in name else 400), name
    assert {"cpu_ms_per_kb", "peak_kb_per_kb", "cpu_shape", "peak_shape"} <= set(report["worst"])
