"""The short chaos run inside `make test`: a fixed seed, a few dozen payments of both kinds, every
provider, callback and process fault kind, and zero invariant violations against the ledgers."""

from chaos.harness import BKASH_FAULTS, MONETIX_FAULTS, run_chaos


async def test_short_chaos_run_loses_nothing(tmp_path):
    report = await run_chaos(seed=20261121, count=36, workdir=tmp_path, worker_kills=3,
                             server_restarts=1, endpoint_restarts=1)
    print("\n".join(report.lines()))
    assert report.violations == []
    process_faults = [k for k in report.injected if k.startswith("process:")]
    assert len(process_faults) == 3
    assert set(BKASH_FAULTS) | set(MONETIX_FAULTS) <= set(report.injected)
    for kind, injected in report.injected.items():
        assert report.survived[kind] == injected, kind
