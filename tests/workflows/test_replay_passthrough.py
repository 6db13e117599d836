"""The saved histories replay, without nondeterminism, under the sandbox the payments worker is
meant to run (workflow_runner.py: contracts passed through), as they do under the default one
(test_replay.py): passing the data models through changes no command a workflow makes."""

import json

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import DATA_CONVERTER
from tests.workflows.test_replay import HISTORIES
from worker import WORKFLOWS
from workflow_runner import payments_workflow_runner


async def test_every_saved_history_replays_with_the_contracts_passed_through():
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER,
                        workflow_runner=payments_workflow_runner())
    assert HISTORIES

    async def histories():
        for path in HISTORIES:
            yield WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))

    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    failed = {run_id: str(err) for run_id, err in results.replay_failures.items()}
    assert not failed, failed


def test_a_contract_model_is_the_worker_s_own_class_inside_the_sandbox():
    # What makes the runner cheap: the sandbox does not build the models again per workflow run.
    from temporalio.worker.workflow_sandbox._importer import Importer
    from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext

    import contracts.bkash

    importer = Importer(payments_workflow_runner().restrictions, RestrictionContext())
    with importer.applied():
        import contracts.bkash as inside  # noqa: F811
    assert inside.BkashPaymentRequest is contracts.bkash.BkashPaymentRequest
