"""The chaos run's report: what was injected and survived, how the processes fared, bKash's token
calls, the outcomes, the refunds' answers and the violations (which must be none)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.harness import Chaos


@dataclass
class Report:
    seed: int
    count: int
    injected: Counter = field(default_factory=Counter)
    survived: Counter = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    refunds: Counter = field(default_factory=Counter)  # merchant answers, REFUND lines
    seconds: float = 0.0
    processes: list[str] = field(default_factory=list)  # how often each process went down
    token_calls: str = ""  # the bKash sandbox's grant/refresh count
    late_pages: int = 0  # bKash customers who left: the page came after the approval window
    # The spent-budget mode (chaos/tokens.py): each payment whose execute waited for a token →
    # (the stage it ended in, seconds it waited); the line is printed when the mode is on.
    token_waits: dict[str, tuple[str, float]] = field(default_factory=dict)
    token_waits_line: str = ""

    def lines(self) -> list[str]:
        out = [f"chaos run: seed {self.seed}, {self.count} payments, {self.seconds:.0f} s"]
        width = max(len(k) for k in self.injected) if self.injected else 10
        for kind in sorted(self.injected):
            out.append(f"  {kind:<{width}}  injected {self.injected[kind]:>3}  "
                       f"survived {self.survived[kind]:>3}")
        out.extend(f"  {line}" for line in self.processes)
        if self.token_calls:
            out.append(f"  {self.token_calls}")
        if self.token_waits_line:
            out.append(f"  {self.token_waits_line}")
        if self.late_pages:
            out.append(f"  bKash customers who left before a page shown after the approval "
                       f"window: {self.late_pages}")
        out.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        if self.refunds:
            out.append("  refunds: " + ", ".join(f"{k} {v}" for k, v in sorted(self.refunds.items())))
        out.append(f"  violations: {len(self.violations)}")
        out.extend(f"    - {v}" for v in self.violations)
        return out

    def write_json(self, path: Path, chaos: Chaos) -> None:
        """report.json: this report, the run's pacing and budgets, each payment's notes and each
        refunded payment's refund plan."""
        path.write_text(json.dumps({
            "seed": self.seed, "count": self.count, "seconds": self.seconds,
            "pacing": dataclasses.asdict(chaos.pacing),
            "budgets": dataclasses.asdict(chaos.budgets),
            "processes": self.processes, "token_calls": self.token_calls,
            "token_waits": self.token_waits,
            "injected": self.injected, "survived": self.survived,
            "outcomes": self.outcomes, "violations": self.violations, "refunds": self.refunds,
            "notes": {p.key: p.notes for p in chaos.payments if p.notes},
            "refund_plans": {p.key: {
                "kind": p.refund.kind, "captured_poisha": p.refund.captured_poisha,
                "notes": p.refund.notes,
                "steps": [{"refund_id": s.refund_id, "amount_poisha": s.amount_poisha,
                           "expect": s.expect, "outcome": s.outcome, "detail": s.detail}
                          for s in p.refund.steps]}
                for p in chaos.payments if p.refund and p.refund.executed}}, indent=2))
