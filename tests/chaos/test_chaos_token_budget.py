"""The spent-budget chaos run inside `make test` (issue 11): bKash's token hour shortened to 20 s at
the sandbox and the worker alike, payments whose token is rejected while the window's two
grant/refresh calls are spent, and the worker killed meanwhile. The worker must refuse the
re-grant itself (never a third call in the window: the merchant is never blocked), let the
execute wait for the window, and send it then: every customer who approved ends with an
authorization, captured or voided. The test fails if no payment actually met the spent budget."""

from chaos.harness import run_chaos
from chaos.pacing import Pacing
from chaos.tokens import BUDGET_SPENT, TOKEN_EXPIRED

WINDOW = 20.0
# Starts over 30 s: more than one window, so the budget is spent again after it rolls.
PACING = Pacing(start_rate=1.0, workers=1, worker_kill_every=10.0, worker_min_up=4.0,
                server_restart_every=0.0, endpoint_restart_every=20.0, customer_window=15.0,
                hold_deadline=6.0, token_budget_window=WINDOW)


async def test_approved_payments_wait_out_a_spent_token_budget(tmp_path):
    report = await run_chaos(seed=20261204, count=30, workdir=tmp_path, pacing=PACING,
                             refund_share=0.0)
    print("\n".join(report.lines()))
    assert report.violations == []
    for kind, injected in report.injected.items():
        assert report.survived[kind] == injected, kind
    assert report.injected[TOKEN_EXPIRED] == 0 and report.injected[BUDGET_SPENT] >= 3
    # The situation arose: executes were refused locally and waited for the window to roll ...
    waited = report.token_waits
    assert len(waited) >= 3, waited
    assert max(seconds for _, seconds in waited.values()) >= WINDOW / 4, waited
    # ... and ended with the authorization the customer approved (the approval invariant holds
    # every approved payment to that; here, every one that waited was approved).
    assert {stage for stage, _ in waited.values()} <= {"CAPTURED", "VOIDED"}, waited
    assert f"{len(waited)} payments' execute waited for a token" in report.token_waits_line
    # bKash's counter: within 2 a window, the merchant never blocked, and the budget was spent
    # in more than one window (a re-grant after the first window rolled).
    assert f"at most 2 in a rolling {WINDOW:g} s window" in report.token_calls, report.token_calls
    grants = int(report.token_calls.split("grant ")[1].split(",")[0])
    assert grants >= 3, report.token_calls
    # The worker refused the third call itself (never sent), as often as executes waited.
    log = (tmp_path / "logs" / "worker.log").read_text()
    assert log.count("allowed per hour are spent; the call was not sent") >= len(waited)
