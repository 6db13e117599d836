"""The short chaos runs inside `make test`: a fixed seed, a few dozen payments of both kinds, every
provider, callback and process fault kind, a few refunds of the captured / paid ones (partial,
over-refunds, the same refund id at once, lost answers and callbacks, a provider decline), and zero
invariant violations against the ledgers; once with one worker (the per-host token file), once
with two worker processes sharing one Redis token store, each killed on its own clock."""

from chaos.harness import BKASH_FAULTS, MONETIX_FAULTS, run_chaos
from chaos.pacing import Pacing
from chaos.tokens import TOKEN_EXPIRED

# The refund kinds that cost seconds, not tens of seconds (the long run deals every kind).
REFUND_KINDS = [
    "bkash refund: over-refund refused",
    "bkash refund: same refund id at once, then another amount",
    "bkash refund: answer lost after commit",
    "monetix refund: partial refunds",
    "monetix refund: refund callback duplicated",
    "monetix refund: refund callback lost (status request)",
    "monetix refund: declined by the provider",
]


def short(workers: int) -> Pacing:
    """Seconds, not minutes: short windows, the faults on quick clocks, every worker still up
    most of the time (at least 4 s between kills)."""
    return Pacing(start_rate=6.0, workers=workers, worker_kill_every=10.0, worker_min_up=4.0,
                  server_restart_every=30.0, endpoint_restart_every=20.0, customer_window=15.0,
                  hold_deadline=6.0)


def assert_survived(report, workers: int) -> None:
    print("\n".join(report.lines()))
    assert report.violations == []
    process_faults = [k for k in report.injected if k.startswith("process:")]
    assert len(process_faults) == 3, process_faults
    assert set(BKASH_FAULTS) | set(MONETIX_FAULTS) <= set(report.injected)
    for kind, injected in report.injected.items():
        assert report.survived[kind] == injected, kind
    # One forced token expiry (the hour's budget: the first grant and one re-grant) ...
    assert report.injected[TOKEN_EXPIRED] == 1
    # ... and the sandbox counted exactly those two, shared by every worker.
    assert "bKash token calls: grant 2, refresh 0; at most 2 in a rolling hour" \
        in report.token_calls, report.token_calls
    assert report.processes[0].startswith(f"workers: {workers},"), report.processes


async def test_short_chaos_run_loses_nothing(tmp_path):
    report = await run_chaos(seed=20261121, count=36, workdir=tmp_path, pacing=short(1),
                             refund_share=0.3, refund_kinds=REFUND_KINDS)
    assert_survived(report, workers=1)
    refund_kinds = [k for k in report.injected if " refund: " in k]
    assert len(refund_kinds) >= 3 and set(refund_kinds) <= set(REFUND_KINDS), refund_kinds
    answers = report.refunds
    assert answers["bkash SUCCEEDED"] + answers["monetix SUCCEEDED"] >= 3, answers
    assert answers["bkash REFUND lines"] + answers["monetix REFUND lines"] >= 3, answers


async def test_short_chaos_run_with_two_workers_sharing_one_redis_token(tmp_path):
    report = await run_chaos(seed=20261122, count=20, workdir=tmp_path, pacing=short(2),
                             refund_share=0.3, refund_kinds=REFUND_KINDS)
    assert_survived(report, workers=2)
    # Both hosts called bKash (each with its own token cache file), and the sandbox counted two
    # grants in all (assert_survived): the token came from the shared Redis store.
    for log in ("worker.log", "worker-2.log"):
        assert "/tokenized/checkout/" in (tmp_path / "logs" / log).read_text(), log
