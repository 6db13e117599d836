"""The chaos run's report: what was injected and survived, how the processes fared, bKash's token
calls, the outcomes, the refunds' answers and the violations (which must be none)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


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

    def lines(self) -> list[str]:
        out = [f"chaos run: seed {self.seed}, {self.count} payments, {self.seconds:.0f} s"]
        width = max(len(k) for k in self.injected) if self.injected else 10
        for kind in sorted(self.injected):
            out.append(f"  {kind:<{width}}  injected {self.injected[kind]:>3}  "
                       f"survived {self.survived[kind]:>3}")
        out.extend(f"  {line}" for line in self.processes)
        if self.token_calls:
            out.append(f"  {self.token_calls}")
        if self.late_pages:
            out.append(f"  bKash customers who left before a page shown after the approval "
                       f"window: {self.late_pages}")
        out.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        if self.refunds:
            out.append("  refunds: " + ", ".join(f"{k} {v}" for k, v in sorted(self.refunds.items())))
        out.append(f"  violations: {len(self.violations)}")
        out.extend(f"    - {v}" for v in self.violations)
        return out
