"""The short chaos run inside `make test`: a fixed seed, a few dozen payments of both kinds, every
provider, callback and process fault kind, a few refunds of the captured / paid ones (partial,
over-refunds, the same refund id at once, lost answers and callbacks, a provider decline), and zero
invariant violations against the ledgers."""

from chaos.harness import BKASH_FAULTS, MONETIX_FAULTS, run_chaos

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


async def test_short_chaos_run_loses_nothing(tmp_path):
    report = await run_chaos(seed=20261121, count=36, workdir=tmp_path, worker_kills=3,
                             server_restarts=1, endpoint_restarts=1, refund_share=0.3,
                             refund_kinds=REFUND_KINDS)
    print("\n".join(report.lines()))
    assert report.violations == []
    process_faults = [k for k in report.injected if k.startswith("process:")]
    assert len(process_faults) == 3
    assert set(BKASH_FAULTS) | set(MONETIX_FAULTS) <= set(report.injected)
    for kind, injected in report.injected.items():
        assert report.survived[kind] == injected, kind
    refund_kinds = [k for k in report.injected if " refund: " in k]
    assert len(refund_kinds) >= 3 and set(refund_kinds) <= set(REFUND_KINDS), refund_kinds
    answers = report.refunds
    assert answers["bkash SUCCEEDED"] + answers["monetix SUCCEEDED"] >= 3, answers
    assert answers["bkash REFUND lines"] + answers["monetix REFUND lines"] >= 3, answers
