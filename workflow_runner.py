"""The workflow sandbox the payments worker runs its workflows in: Temporal's default sandbox, with
the contracts passed through.

Why: the sandbox imports a workflow's modules afresh for every workflow run it starts (a payment,
its notification stream, a refunds ledger), so that no run sees another's module state. For
``contracts/`` that meant building every pydantic model class again — and compiling the source
again where no bytecode cache is written (``PYTHONDONTWRITEBYTECODE``, as in many containers) — for
each payment: 20-30 ms of CPU per bKash or Monetix workflow run and 13-20 ms per notification
stream on a 2-core box, most of a payment's worker CPU (docs/performance.md, "Where the worker's
time went"). The Python SDK's "Passthrough modules" are for exactly this: modules known to be free
of side effects, passed through to make the sandbox quicker.

It is safe because ``contracts/`` is data only: pydantic models, enums, constants and pure
functions, with no module state any workflow writes to (DESIGN.md: contracts import only pydantic
and the standard library). Workflow modules themselves are still re-imported per run, and every
sandbox restriction still applies to workflow code. The saved histories replay under this runner
(tests/workflows/test_replay_passthrough.py).
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

# Packages whose modules every workflow run shares with the worker process (see above).
PASSED_THROUGH = ("contracts",)


def payments_workflow_runner() -> SandboxedWorkflowRunner:
    """``Worker(..., workflow_runner=payments_workflow_runner())`` (worker.build_worker)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH))
