"""Figures → the printed table, the ratios, the JSON file and the PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

ACTION_PRICE_USD = 50 / 1_000_000  # Temporal Cloud pay-as-you-go, first 5M actions (reference §4.1)


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def latency_ms(seconds: list[float]) -> dict:
    ms = [v * 1000 for v in seconds]
    return {"p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
            "mean": sum(ms) / len(ms) if ms else float("nan"), "max": max(ms, default=float("nan")),
            "n": len(ms)}


def _f(value, digits: int = 0) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = lambda cells: "  ".join(  # noqa: E731
        (str(c).rjust(w) if i in right else str(c).ljust(w)) for i, (c, w) in
        enumerate(zip(cells, widths)))
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(r) for r in rows)])


def phase_table(phases: list[dict]) -> str:
    headers = ["kind", "path", "conc", "pay/s", "payment p50", "p95", "p99", "step p50", "p95",
               "p99", "worker CPU ms/pay", "server CPU ms/pay", "driver CPU ms/pay", "events",
               "actions", "worker peak RSS MiB", "ok"]
    rows = []
    for p in phases:
        lat, step, cpu, hist = p["latency_ms"]["payment"], p["latency_ms"]["step"], \
            p["cpu_ms_per_payment"], p.get("history") or {}
        rows.append([p["kind"], p["path"], p["concurrency"], _f(p["payments_per_s"], 1),
                     _f(lat["p50"]), _f(lat["p95"]), _f(lat["p99"]),
                     _f(step["p50"]), _f(step["p95"]), _f(step["p99"]),
                     _f(cpu.get("worker"), 1), _f(cpu.get("server"), 1), _f(cpu.get("driver"), 1),
                     _f(hist.get("events"), 1), _f(hist.get("billable_actions"), 1),
                     _f(p.get("worker_peak_rss_mib"), 0), f"{p['ok']}/{p['payments']}"])
    return table(headers, rows, right=set(range(2, len(headers))))


def ratios(phases: list[dict]) -> list[dict]:
    """Per kind and concurrency: payment workflow ÷ floor, and payment workflow − direct."""
    index = {(p["kind"], p["path"], p["concurrency"]): p for p in phases}
    out = []
    for (kind, path, conc), wf in index.items():
        if path != "workflow":
            continue
        row = {"kind": kind, "concurrency": conc}
        floor, direct = index.get((kind, "floor", conc)), index.get((kind, "direct", conc))
        if floor:
            row["workflow_div_floor"] = {
                "payments_per_s": _div(wf["payments_per_s"], floor["payments_per_s"]),
                "payment_p50": _div(wf["latency_ms"]["payment"]["p50"],
                                    floor["latency_ms"]["payment"]["p50"]),
                "step_p50": _div(wf["latency_ms"]["step"]["p50"], floor["latency_ms"]["step"]["p50"]),
                "worker_cpu": _div(wf["cpu_ms_per_payment"].get("worker"),
                                   floor["cpu_ms_per_payment"].get("worker")),
                "server_cpu": _div(wf["cpu_ms_per_payment"].get("server"),
                                   floor["cpu_ms_per_payment"].get("server")),
            }
        if direct:
            row["workflow_minus_direct_ms"] = {
                "payment_p50": wf["latency_ms"]["payment"]["p50"] - direct["latency_ms"]["payment"]["p50"],
                "payment_p95": wf["latency_ms"]["payment"]["p95"] - direct["latency_ms"]["payment"]["p95"],
                "step_p50": wf["latency_ms"]["step"]["p50"] - direct["latency_ms"]["step"]["p50"],
                "step_p95": wf["latency_ms"]["step"]["p95"] - direct["latency_ms"]["step"]["p95"],
            }
            row["direct_div_workflow_payments_per_s"] = _div(direct["payments_per_s"],
                                                             wf["payments_per_s"])
        out.append(row)
    return out


def _div(a, b):
    if a is None or b is None or b == 0 or a != a or b != b:
        return None
    return a / b


def ratio_table(rows: list[dict]) -> str:
    headers = ["kind", "conc", "pay/s wf÷floor", "p50 wf÷floor", "step p50 wf÷floor",
               "worker CPU wf÷floor", "server CPU wf÷floor", "p50 wf−direct ms",
               "p95 wf−direct ms", "step p50 wf−direct ms", "pay/s direct÷wf"]
    out = []
    for r in rows:
        f, d = r.get("workflow_div_floor", {}), r.get("workflow_minus_direct_ms", {})
        out.append([r["kind"], r["concurrency"], _f(f.get("payments_per_s"), 2),
                    _f(f.get("payment_p50"), 2), _f(f.get("step_p50"), 2),
                    _f(f.get("worker_cpu"), 2), _f(f.get("server_cpu"), 2),
                    _f(d.get("payment_p50")), _f(d.get("payment_p95")), _f(d.get("step_p50")),
                    _f(r.get("direct_div_workflow_payments_per_s"), 1)])
    return table(headers, out, right=set(range(1, len(headers))))


ACTION_COLUMNS = ["workflow start", "activity", "update", "timer", "search attribute upsert",
                  "signal", "query", "rejected update"]


def actions_table(paths: list[dict], unit: str = "payments") -> str:
    headers = ["path", "final", "events", *ACTION_COLUMNS, "total", f"USD / 1M {unit}"]
    rows = []
    for p in paths:
        counts = p["actions"]
        rows.append([p["path"], p["final"], p["events"], *(counts.get(c, 0) for c in ACTION_COLUMNS),
                     p["total_actions"], f"{p['total_actions'] * ACTION_PRICE_USD * 1_000_000:,.0f}"])
    return table(headers, rows, right=set(range(2, len(headers))))


def write_json(path: Path, report: dict) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def write_chart(png: Path, report: dict) -> str | None:
    """A PNG of throughput, latency and worker CPU by concurrency; None if matplotlib is missing
    (it is in the ``bench`` extra, which ``make bench`` installs)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    phases = report["phases"]
    series = sorted({(p["kind"], p["path"]) for p in phases})
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    panels = [
        (axes[0][0], "payments per second", lambda p: p["payments_per_s"]),
        (axes[0][1], "whole payment p50 / p95 latency (ms)", None),
        (axes[1][0], "customer-visible step p50 / p95 (ms)", None),
        (axes[1][1], "CPU ms per payment: worker (solid), dev server (dashed)", None),
    ]
    styles = {"workflow": "o-", "floor": "s-", "direct": "^-"}
    colors = {"bkash": "tab:red", "monetix": "tab:blue"}
    for kind, path in series:
        pts = sorted((p for p in phases if (p["kind"], p["path"]) == (kind, path)),
                     key=lambda p: p["concurrency"])
        xs = [p["concurrency"] for p in pts]
        label = f"{kind} {path}"
        style, color = styles.get(path, "o-"), colors.get(kind)
        axes[0][0].plot(xs, [p["payments_per_s"] for p in pts], style, color=color, label=label)
        for ax, key in ((axes[0][1], "payment"), (axes[1][0], "step")):
            ax.plot(xs, [p["latency_ms"][key]["p50"] for p in pts], style, color=color, label=label)
            ax.plot(xs, [p["latency_ms"][key]["p95"] for p in pts], style, color=color, alpha=0.35)
        worker = [p["cpu_ms_per_payment"].get("worker") for p in pts]
        if all(v is not None for v in worker):
            axes[1][1].plot(xs, worker, style, color=color, label=f"{label} worker")
        if path != "direct":
            axes[1][1].plot(xs, [p["cpu_ms_per_payment"].get("server") for p in pts],
                            style.replace("-", "--"), color=color, alpha=0.6)
    levels = sorted({p["concurrency"] for p in phases})
    for ax, title, _ in panels:
        ax.set_title(title, fontsize=10)
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("payments in flight")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_yscale("log")
    axes[0][1].set_yscale("log")
    axes[1][0].set_yscale("log")
    meta = report["meta"]
    fig.suptitle(f"make bench — {meta['machine']['cpus']} CPU(s), {meta['dev_server']['persistence']}"
                 f", {meta['payments_per_phase']} payments per phase ({meta['started_at']})",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return str(png)
