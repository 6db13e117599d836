"""Payments as the Web UI lists them, by the project's search attributes."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from contracts.bkash import BkashStage
from contracts.common import DEFAULT_ACCOUNT, Provider, SearchAttribute
from contracts.monetix import MonetixStage
from merchant_client.calls import KEYS, workflow_account
from merchant_client.connection import PaymentError, explain_rpc_error

STAGES = {Provider.BKASH: [s.value for s in BkashStage],
          Provider.MONETIX: [s.value for s in MonetixStage]}


def stage_for(provider: str, stage: str) -> str:
    """A stage name in any case, checked against the provider's stages."""
    wanted = stage.strip().upper()
    known = STAGES[Provider(provider)]
    if wanted not in known:
        raise PaymentError(f"--stage {stage!r} is not a {provider} stage; use one of "
                           f"{', '.join(known)}")
    return wanted


async def list_payments(client: Client, stage: str | None = None,
                        provider: str = Provider.BKASH, account_id: str | None = None) -> list[dict]:
    """Payments of ``provider``, of one stage and/or one merchant account when given."""
    try:
        provider = Provider(provider)
    except ValueError:
        raise PaymentError(f"--provider {provider!r}: use bkash or monetix") from None
    query = f'{SearchAttribute.PAYMENT_PROVIDER.value}="{provider.value}"'
    if stage:
        query += f' AND {SearchAttribute.PAYMENT_STAGE.value}="{stage_for(provider, stage)}"'
    if account_id is not None:
        query += f' AND {SearchAttribute.PAYMENT_ACCOUNT.value}="{workflow_account(account_id)}"'
    rows = []
    try:
        async for wf in client.list_workflows(query):
            attrs = wf.typed_search_attributes
            rows.append({
                "workflow_id": wf.id,
                "invoice": attrs.get(KEYS[SearchAttribute.MERCHANT_INVOICE]),
                "stage": attrs.get(KEYS[SearchAttribute.PAYMENT_STAGE]),
                "payment_id": attrs.get(KEYS[SearchAttribute.PROVIDER_PAYMENT_ID]) or None,
                "account": attrs.get(KEYS[SearchAttribute.PAYMENT_ACCOUNT]) or DEFAULT_ACCOUNT,
                "running": wf.status == WorkflowExecutionStatus.RUNNING})
    except RPCError as err:
        raise explain_rpc_error(err, "payments", client) or err from None
    return rows
