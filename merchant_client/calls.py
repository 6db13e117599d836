"""The three calls every lifecycle is driven by: update-with-start, update, query — by name, with
errors turned into :class:`PaymentError`s a merchant can act on."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from contracts.common import Model, SearchAttribute, check_account_id
from contracts.money import format_bdt
from merchant_client.connection import PaymentError, explain_rpc_error

_KEY_TYPES = {"Int": SearchAttributeKey.for_int, "Keyword": SearchAttributeKey.for_keyword,
              "Datetime": SearchAttributeKey.for_datetime}
KEYS = {a: _KEY_TYPES[a.kind](a.value) for a in SearchAttribute}
# What a namespace must have registered (the dev server: start_local(search_attributes=...)).
SEARCH_ATTRIBUTE_KEYS = list(KEYS.values())


def attributes(**values: str | int) -> TypedSearchAttributes:
    """``attributes(PAYMENT_STAGE="SALE", ...)``: search attributes by contract name. A stage
    comes with its time (PaymentStageSince: now), as the workflow's own stage upserts do."""
    pairs = [SearchAttributePair(KEYS[SearchAttribute[k]], v) for k, v in values.items()]
    if "PAYMENT_STAGE" in values and "PAYMENT_STAGE_SINCE" not in values:
        pairs.append(SearchAttributePair(KEYS[SearchAttribute.PAYMENT_STAGE_SINCE],
                                         datetime.now(timezone.utc)))
    return TypedSearchAttributes(pairs)


def workflow_account(account_id: str) -> str:
    """A merchant account id as merchant code passed it, checked (no workflow id is built from an
    id that is not one)."""
    try:
        return check_account_id(account_id)
    except ValueError as exc:
        raise PaymentError(str(exc)) from None


def start_update_id(prefix: str, amount_poisha: int) -> str:
    """``approval_url-50000``: a retried start (a timeout, a double click) is the same update, so
    Temporal answers it once instead of piling up updates on one workflow. Update ids are stored in
    plain text (no codec reaches them), so the id holds only the update's name and the amount, never
    anything taken from the request's personal fields (a hash of a name or an e-mail can be looked
    up): it is unique per workflow id (the invoice), and a start for another amount is another
    update, answered with the running payment's amount and refused below."""
    return f"{prefix}-{amount_poisha}"


async def start_with_update(client: Client, workflow: str, request: Model, *, workflow_id: str,
                            update: str, result_type: type, search: TypedSearchAttributes,
                            summary: str, task_queue: str, what: str, finished_as,
                            amount_poisha: int) -> Any:
    """Update-with-start, idempotent by business key: a running payment is returned as it is
    (USE_EXISTING); a finished one cannot be started again (REJECT_DUPLICATE); the same key with
    another amount is refused, never confused with the running payment."""
    for attempt in range(TRANSIENT_TRIES):
        op = WithStartWorkflowOperation(
            workflow, request, id=workflow_id, task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search, static_summary=summary)
        try:
            answer = await client.execute_update_with_start_workflow(
                update, start_workflow_operation=op, id=start_update_id(update, amount_poisha),
                result_type=result_type)
            break
        except RPCError as err:
            if not _transient(err) or attempt == TRANSIENT_TRIES - 1:
                return await _start_failed(op, err, what, client, workflow_id, workflow,
                                           finished_as)
            await _settle(op)
            await asyncio.sleep(0.5 * 2 ** attempt)
        except BaseException as err:  # noqa: BLE001 - sorted out below, as before
            return await _start_failed(op, err, what, client, workflow_id, workflow, finished_as)
    try:
        # The same update id on a payment that has ended since is answered from its history:
        # that old answer (an approval URL, instructions) must not reach the customer again.
        handle = await op.workflow_handle()
        # A payment FAILED at start (its merchant account unknown to the worker, bKash refusing
        # the merchant's configuration) ends at once: its answer says so, whether this start or
        # an earlier one with this key made it.
        # Likewise a sale refused at once (DECLINED): a final answer is the truth, whichever start
        # made it; only an actionable one (an approval URL, payment instructions) is stale.
        stage = getattr(answer, "stage", None)
        final = getattr(stage, "is_final", False) or stage == "FAILED"
        if not final and (await handle.describe()).close_time is not None:
            raise WorkflowAlreadyStartedError(workflow_id, workflow)
    except BaseException as err:  # noqa: BLE001
        return await _start_failed(op, err, what, client, workflow_id, workflow, finished_as)
    running = getattr(answer, "amount_poisha", None)
    if running is not None and running != amount_poisha:
        raise PaymentError(f"{what} already has a running payment of {format_bdt(running)} BDT, "
                           f"not {format_bdt(amount_poisha)} BDT: use a new one for a different "
                           "amount")
    return answer


# A workflow task that failed (a worker starved past the task timeout, a worker killed mid-task) is
# retried by the server within moments; an update arriving meanwhile is refused with this. The same
# update id makes trying again harmless.
TRANSIENT_TRIES = 5


def _transient(err: RPCError) -> bool:
    return "Workflow Task in failed state" in str(err)


async def _start_failed(op: WithStartWorkflowOperation, err: BaseException, what: str,
                        client: Client, workflow_id: str, workflow: str, finished_as) -> Any:
    """Raise what an update-with-start's failure means to the merchant."""
    if isinstance(err, WorkflowAlreadyStartedError):
        await _settle(op)
        outcome = await finished_as(client, workflow_id)
        raise PaymentError(f"{what} was already paid and ended {outcome}; use a new one") from None
    if isinstance(err, WorkflowUpdateFailedError):
        await _settle(op)
        raise PaymentError(_cause(err)) from None
    if isinstance(err, RPCError):
        await _settle(op)
        raise explain_rpc_error(err, what, client) or err from None
    if isinstance(err, (asyncio.CancelledError, WorkflowUpdateRPCTimeoutOrCancelledError)):
        retrieve_later(op)
    raise err


def retrieve_later(op: WithStartWorkflowOperation) -> None:
    """A start cancelled by the caller (a timeout) leaves the start's future to fail later; retrieve
    its outcome then, so asyncio does not report "Future exception was never retrieved"."""
    future = getattr(op, "_workflow_handle", None)
    if isinstance(future, asyncio.Future):
        future.add_done_callback(lambda f: f.cancelled() or f.exception())


async def _settle(op: WithStartWorkflowOperation) -> None:
    # The start's own future carries the same failure; retrieve it so asyncio does not report
    # "Future exception was never retrieved" at exit.
    try:
        await op.workflow_handle()
    except Exception:  # noqa: BLE001 - already reported through the update's error
        pass


async def update(client: Client, workflow_id: str, name: str, arg: Any, *, update_id: str,
                 result_type: type, what: str) -> Any:
    handle = client.get_workflow_handle(workflow_id)
    args = [] if arg is None else [arg]
    for attempt in range(TRANSIENT_TRIES):
        try:
            # The update id makes a retried call (network blip, double click) harmless.
            return await handle.execute_update(name, args=args, id=update_id,
                                               result_type=result_type)
        except WorkflowUpdateFailedError as err:
            raise PaymentError(_cause(err)) from None
        except RPCError as err:
            if not _transient(err) or attempt == TRANSIENT_TRIES - 1:
                raise explain_rpc_error(err, f"running {what}", client) or err from None
            await asyncio.sleep(0.5 * 2 ** attempt)


async def query(client: Client, workflow_id: str, name: str, *, result_type: type,
                what: str) -> Any:
    try:
        return await client.get_workflow_handle(workflow_id).query(name, result_type=result_type)
    except RPCError as err:
        raise explain_rpc_error(err, what, client) or err from None


async def result(client: Client, workflow_id: str, *, result_type: type, what: str) -> Any:
    try:
        return await client.get_workflow_handle(workflow_id, result_type=result_type).result()
    except RPCError as err:
        raise explain_rpc_error(err, what, client) or err from None


def _cause(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return str(getattr(cause, "message", None) or cause or err)
