"""``starter.py reconcile ...``: the reconciliation commands, for starter.py to wire in.

    python starter.py reconcile schedule [--every 24h | --cron "15 0 * * *"] [--window 24h] [--lag 15m]
    python starter.py reconcile run --from 2025-01-01 --to 2025-01-02     # prints the report paths
    python starter.py reconcile report --from 2025-01-01 --to 2025-01-02  # the latest finished run
    python starter.py reconcile trigger                                   # fire the schedule now

Instants are ISO 8601 with a time zone (2025-01-01T00:00:00Z, 2025-01-01T06:00:00+06:00) or a date
(UTC midnight); durations are like 24h, 90m, 1h30m, 2d. Every flag is checked before connecting.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from pydantic import ValidationError

from contracts.reconciliation import (
    MAX_WINDOW,
    Divergence,
    ReconciliationOptions,
    ReconciliationReport,
    Window,
)
from merchant_client.connection import PaymentError
from merchant_client.reconciliation import (
    ensure_schedule,
    reconcile,
    schedule_of,
    trigger_schedule,
    window_report,
)

_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Option fields → the flag a user typed.
_OPTION_FLAGS = {"calls_per_second": "--calls-per-second", "batch_size": "--batch-size",
                 "parallel_batches": "--parallel-batches", "overdue_grace": "--overdue-grace"}


def add_reconcile_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    rec = sub.add_parser("reconcile", help="check closed payments and refunds against bKash and "
                         "Monetix (a schedule, or one window now)")
    actions = rec.add_subparsers(dest="reconcile_action", required=True, metavar="ACTION")
    sch = actions.add_parser("schedule", help="create or update the reconciliation schedule "
                             "(idempotent)")
    sch.add_argument("--every", help="how often, e.g. 24h (the default: a run a day after 00:00 "
                     "UTC + --lag)")
    sch.add_argument("--cron", help="instead of --every: a cron expression in UTC, e.g. "
                     "'15 0 * * *'")
    sch.add_argument("--window", help="the window each run covers (default: --every, or 24h)")
    sch.add_argument("--lag", default="15m", help="how long after a window ends it is reconciled "
                     "(default 15m: late visibility, a payment closing at the boundary)")
    run = actions.add_parser("run", help="reconcile one window now and print the report's paths "
                             "and one line per divergence")
    rep = actions.add_parser("report", help="print the latest finished report of a window")
    for p in (run, rep):
        p.add_argument("--from", dest="start", required=True, help="the window's start (inclusive)")
        p.add_argument("--to", dest="end", required=True, help="the window's end (exclusive)")
    run.add_argument("--no-wait", action="store_true", help="start it and return")
    for p in (sch, run):
        p.add_argument("--calls-per-second", type=float, help="the provider call rate of a run "
                       "(default 10)")
        p.add_argument("--batch-size", type=int, help="items per batch (default 100)")
        p.add_argument("--parallel-batches", type=int, help="batches at once (default 2)")
        p.add_argument("--overdue-grace", help="how long past its own windows a running payment "
                       "may go before it is reported (default 1h)")
    actions.add_parser("trigger", help="fire the schedule now (the last whole window)")
    return rec


@dataclass
class ReconcileCommand:
    """A ``reconcile`` command with every flag checked (``prepare_reconcile``)."""

    action: str
    window: Window | None = None
    options: ReconciliationOptions | None = None
    schedule: dict = field(default_factory=dict)
    wait: bool = True


def prepare_reconcile(args: argparse.Namespace, now: datetime | None = None) -> ReconcileCommand:
    """Check the flags before anything is sent; a PaymentError names the flag and the rule."""
    action = args.reconcile_action
    cmd = ReconcileCommand(action=action, wait=not getattr(args, "no_wait", False))
    if action in ("run", "report"):
        cmd.window = parse_window(args.start, args.end)
        if action == "run" and cmd.window.end > (now or datetime.now(timezone.utc)):
            raise PaymentError(f"--to {args.end}: the window has not ended yet; a window is "
                               "reconciled once it is over (its payments may still close)")
    if action in ("run", "schedule"):
        cmd.options = _options(args)
    if action == "schedule":
        if args.every and args.cron:
            raise PaymentError("--every and --cron: give one of them")
        every = (parse_duration(args.every, "--every") if args.every
                 else None if args.cron else timedelta(hours=24))
        if args.cron is not None and not args.cron.strip():
            raise PaymentError("--cron '': give a cron expression in UTC, e.g. '15 0 * * *'")
        cmd.schedule = {"every": every, "cron": args.cron,
                        "window_length": parse_duration(args.window, "--window")
                        if args.window else None,
                        "lag": parse_duration(args.lag, "--lag", allow_zero=True),
                        "options": cmd.options}
        try:
            schedule_of(**cmd.schedule)  # the rules of the schedule's input, before connecting
        except ValidationError as exc:
            raise PaymentError(_schedule_problems(exc)) from None
    return cmd


async def run_reconcile(client, cmd: ReconcileCommand, *, task_queue: str) -> None:
    if cmd.action == "schedule":
        done = await ensure_schedule(client, task_queue=task_queue, **cmd.schedule)
        how = (f"every {cmd.schedule['every']}" if cmd.schedule["every"]
               else f"cron {cmd.schedule['cron']!r}")
        print(f"schedule payments-reconciliation {done}: {how}, lag {cmd.schedule['lag']}")
    elif cmd.action == "trigger":
        await trigger_schedule(client)
        print("schedule payments-reconciliation triggered: the last whole window runs now")
    elif cmd.action == "run":
        assert cmd.window is not None
        report = await reconcile(client, cmd.window, cmd.options, task_queue=task_queue,
                                 wait=cmd.wait)
        if report is None:
            print(f"started {cmd.window.workflow_id}")
            return
        print_report(report)
    else:
        assert cmd.window is not None
        print_report(await window_report(client, cmd.window))


def print_report(report: ReconciliationReport) -> None:
    c = report.checked
    print(f"json: {report.json_path}")
    print(f"csv: {report.csv_path}")
    print(f"{report.divergence_count} divergences in {report.window.label} "
          f"({report.notified} notified by this run); checked {c.bkash_payments} bKash and "
          f"{c.monetix_payments} Monetix payments, {c.refunds} refunds, {c.running} running; "
          f"{c.skipped} skipped, {len(report.unchecked)} unchecked")
    for d in report.divergences:
        print(summary_line(d))
    for u in report.unchecked:
        print(f"unchecked: {u.source}: {u.reason}")
    if report.unlisted:
        print(f"... and {report.unlisted} more divergences, counted but not listed")


def summary_line(d: Divergence) -> str:
    what = f"{d.payment_key}" + (f" refund {d.refund_id}" if d.refund_id else "")
    return (f"{d.kind.value}: {d.provider.value} {what} [{d.stage}] project={d.project or '-'} "
            f"provider={d.provider_says or '-'}: {d.detail}")


def parse_instant(text: str, flag: str) -> datetime:
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PaymentError(f"{flag} {text!r}: not an ISO 8601 instant, e.g. 2025-01-01T00:00:00Z "
                           "or the date 2025-01-01 (UTC midnight)") from None
    if at.tzinfo is None:
        raise PaymentError(f"{flag} {text!r}: give the time zone, e.g. {text}Z or {text}+06:00")
    if at.microsecond:
        raise PaymentError(f"{flag} {text!r}: whole seconds only")
    return at


def parse_window(start: str, end: str) -> Window:
    begin, finish = parse_instant(start, "--from"), parse_instant(end, "--to")
    if finish <= begin:
        raise PaymentError(f"--to {end} must be after --from {start}")
    if finish - begin > MAX_WINDOW:
        raise PaymentError(f"--from {start} --to {end}: at most {MAX_WINDOW.days} days per "
                           "window; reconcile a longer period window by window")
    return Window(start=begin, end=finish)


def parse_duration(text: str, flag: str, *, allow_zero: bool = False) -> timedelta:
    """``24h``, ``90m``, ``1h30m``, ``2d``, ``45s``."""
    cleaned = text.strip().lower()
    if not cleaned or _DURATION.sub("", cleaned):
        raise PaymentError(f"{flag} {text!r}: not a duration; write e.g. 24h, 90m, 1h30m, 2d")
    value = timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(cleaned)))
    if value <= timedelta(0) and not allow_zero:
        raise PaymentError(f"{flag} {text!r}: must be more than 0")
    return value


def _options(args: argparse.Namespace) -> ReconciliationOptions:
    given = {name: getattr(args, name) for name in ("calls_per_second", "batch_size",
                                                      "parallel_batches")
             if getattr(args, name, None) is not None}
    if getattr(args, "overdue_grace", None):
        given["overdue_grace"] = parse_duration(args.overdue_grace, "--overdue-grace")
    try:
        return ReconciliationOptions(**given)
    except ValidationError as exc:
        raise PaymentError("; ".join(
            f"{_OPTION_FLAGS.get(str(e['loc'][-1]), e['loc'][-1])} {given.get(e['loc'][-1])}: "
            f"{e['msg'].lower()}" for e in exc.errors(include_input=False))) from None


def _schedule_problems(exc: ValidationError) -> str:
    flags = {"window_length": "--window", "lag": "--lag"}
    problems = []
    for e in exc.errors(include_input=False):
        name = str(e["loc"][-1])
        text = e["msg"].removeprefix("Value error, ").removeprefix(f"{name} ")
        problems.append(f"{flags.get(name, name)} {text}")
    return "; ".join(problems)
