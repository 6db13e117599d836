"""The project's own metric names and label keys, shared by the worker's interceptors and the
endpoint (README "Metrics"). Labels are low-cardinality: provider, account, stage, operation,
outcome, verdict — never a payment, invoice or customer."""

from __future__ import annotations

PAYMENTS_STARTED = "payments_started"
PAYMENTS_FINISHED = "payments_finished"
PROVIDER_CALLS = "provider_calls"
PROVIDER_CALL_LATENCY = "provider_call_latency"
REFUNDS = "refunds"
TOKEN_CALLS = "bkash_token_calls"
ENDPOINT_REQUESTS = "endpoint_requests"
