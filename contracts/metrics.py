"""The project's own metric names and label keys, shared by the worker's interceptors and the
endpoint (README "Metrics"). Labels are low-cardinality: provider, account, stage, operation,
outcome, verdict — never a payment, invoice or customer."""

from __future__ import annotations

from contracts.bkash import WORKFLOW as BKASH_WORKFLOW
from contracts.monetix import GATE_WORKFLOW, PAGE_WORKFLOW

PAYMENTS_STARTED = "payments_started"
PAYMENTS_FINISHED = "payments_finished"
PROVIDER_CALLS = "provider_calls"
PROVIDER_CALL_LATENCY = "provider_call_latency"
REFUNDS = "refunds"
TOKEN_CALLS = "bkash_token_calls"
TOKEN_BUDGET = "bkash_token_budget_remaining"
ENDPOINT_REQUESTS = "endpoint_requests"
# Running payments resting in a stage that should last seconds for longer than the setting
# (merchant_client/stalled.py), by stage: a gauge the worker sets from visibility.
PAYMENTS_STALLED = "payments_stalled"

# What payments_started/finished count: the payments themselves, not the workflows around them
# (refund ledgers, notification streams, reconciliation runs).
PAYMENT_WORKFLOWS = frozenset({BKASH_WORKFLOW, GATE_WORKFLOW, PAGE_WORKFLOW})
