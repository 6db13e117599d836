"""`make chaos ARGS="--seed 7 --count 200"`: the long chaos run; prints one line per fault and
refund kind (injected, survived), how often each process went down and how long the workers were
up, bKash's token calls, the outcomes, the refunds' answers and REFUND lines, and the invariant
violations (must be 0). Exit status 1 on any violation.

Faults are paced by time, not by the payment count: payments start at --start-rate a second, each
worker is killed every --worker-kill-every seconds on average and is up at least --worker-min-up
seconds in between, the dev server and the endpoint are restarted every --server-restart-every /
--endpoint-restart-every seconds (0: never). The customer's windows (bKash approval, Monetix
transaction ID and clarification, an execute's wait for a token) are --customer-window seconds,
and every budget of the run (merchant calls, the final wait) is sized from them.
--token-budget-spent SECONDS: bKash's token hour lasts SECONDS at the sandbox and the worker, and
payments have their token rejected while its two grant/refresh calls are spent (chaos/tokens.py)."""

import argparse
import shutil
import sys
from pathlib import Path

import runtime_exit
from chaos.harness import run_chaos
from chaos.pacing import Pacing

DEFAULTS = Pacing()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--workers", type=int, default=DEFAULTS.workers,
                        help="worker processes (hosts); more than 1 share one Redis token store, "
                             "each with its own token cache file and kill clock (default 1)")
    parser.add_argument("--start-rate", type=float, default=DEFAULTS.start_rate,
                        help=f"payments started per second (default {DEFAULTS.start_rate:g})")
    parser.add_argument("--worker-kill-every", type=float, default=DEFAULTS.worker_kill_every,
                        help="mean seconds between two kill -9 of one worker; 0: none "
                             f"(default {DEFAULTS.worker_kill_every:g})")
    parser.add_argument("--worker-min-up", type=float, default=DEFAULTS.worker_min_up,
                        help="seconds a restarted worker is up before its next kill "
                             f"(default {DEFAULTS.worker_min_up:g})")
    parser.add_argument("--server-restart-every", type=float,
                        default=DEFAULTS.server_restart_every,
                        help="mean seconds between dev server restarts; 0: none "
                             f"(default {DEFAULTS.server_restart_every:g})")
    parser.add_argument("--endpoint-restart-every", type=float,
                        default=DEFAULTS.endpoint_restart_every,
                        help="mean seconds between endpoint kill -9; 0: none "
                             f"(default {DEFAULTS.endpoint_restart_every:g})")
    parser.add_argument("--customer-window", type=float, default=DEFAULTS.customer_window,
                        help="seconds: bKash approval window, Monetix transaction-ID and "
                             f"clarification windows (default {DEFAULTS.customer_window:g})")
    parser.add_argument("--token-budget-spent", type=float, default=0.0, metavar="SECONDS",
                        help="the spent-budget mode: bKash's rolling token hour (and lockout) "
                             "last SECONDS (e.g. 60), and payments' tokens are rejected while "
                             "its two grant/refresh calls are spent; 0: off (default)")
    parser.add_argument("--refund-share", type=float, default=0.5,
                        help="share of the payments meant to end captured / paid that get "
                             "refunds (default 0.5; 0: no refunds)")
    parser.add_argument("--workdir", default="results/chaos")
    args = parser.parse_args()
    try:
        pacing = Pacing(start_rate=args.start_rate, workers=args.workers,
                        worker_kill_every=args.worker_kill_every,
                        worker_min_up=args.worker_min_up,
                        server_restart_every=args.server_restart_every,
                        endpoint_restart_every=args.endpoint_restart_every,
                        customer_window=args.customer_window,
                        token_budget_window=args.token_budget_spent)
    except ValueError as err:
        parser.error(str(err))
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # A new run: new processes, new sandboxes, so no old logs, history or bKash token (a token
    # cached by the last run is one the new sandbox never issued, and its hourly budget is spent).
    for old in list(workdir.glob("logs/*.log")) + list(workdir.glob("temporal.db*")) \
            + list(workdir.glob("bkash-token.*")):
        old.unlink()
    for old in (workdir / "hosts", workdir / "redis"):
        shutil.rmtree(old, ignore_errors=True)
    report = runtime_exit.run(run_chaos(args.seed, args.count, workdir=workdir, pacing=pacing,
                                        refund_share=args.refund_share))
    print("\n".join(report.lines()))
    print(f"details: {workdir / 'report.json'}; process logs: {workdir / 'logs'}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
