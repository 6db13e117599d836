"""`make chaos ARGS="--seed 7 --count 200"`: the long chaos run; prints one line per fault and
refund kind (injected, survived), the outcomes, the refunds' answers and REFUND lines, and the
invariant violations (must be 0). Exit status 1 on any violation."""

import argparse
import sys
from pathlib import Path

import runtime_exit
from chaos.harness import run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--worker-kills", type=int, default=None,
                        help="default: one per 10 payments")
    parser.add_argument("--server-restarts", type=int, default=1)
    parser.add_argument("--endpoint-restarts", type=int, default=2)
    parser.add_argument("--refund-share", type=float, default=0.5,
                        help="share of the payments meant to end captured / paid that get "
                             "refunds (default 0.5; 0: no refunds)")
    parser.add_argument("--workdir", default="results/chaos")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # A new run: new processes, new sandboxes, so no old logs, history or bKash token (a token
    # cached by the last run is one the new sandbox never issued, and its hourly budget is spent).
    for old in list(workdir.glob("logs/*.log")) + list(workdir.glob("temporal.db*")) \
            + list(workdir.glob("bkash-token.*")):
        old.unlink()
    report = runtime_exit.run(run_chaos(
        args.seed, args.count, workdir=workdir,
        worker_kills=args.worker_kills if args.worker_kills is not None else max(1, args.count // 10),
        server_restarts=args.server_restarts, endpoint_restarts=args.endpoint_restarts,
        refund_share=args.refund_share))
    print("\n".join(report.lines()))
    print(f"details: {workdir / 'report.json'}; process logs: {workdir / 'logs'}")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
