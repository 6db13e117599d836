"""The merchant client: what merchant code (and the CLI, demo, bench, chaos, the endpoint and the
tests) uses to start, inspect and steer payments. It speaks to Temporal only, by workflow, update
and query *names* from contracts, and needs no provider secret: those stay in the worker.

    client = await connect()                                  # TEMPORAL_ADDRESS, ... (envconfig)
    url = await start_payment(client, BkashPaymentRequest(...))
    await report_service_delivered(client, "INV-1001")
"""

from merchant_client.bkash import (
    bkash_view,
    payment_result,
    payment_state,
    report_service_delivered,
    report_service_failed,
    send_customer_return,
    start_payment,
)
from merchant_client.connection import ClientSettings, PaymentError, connect, load_client_settings
from merchant_client.listing import list_payments
from merchant_client.refunds import refund, refunds
from merchant_client.monetix import (
    provide_clarification,
    purchase_result,
    purchase_state,
    send_provider_callback,
    start_gate_purchase,
    start_payment_page_purchase,
    submit_transaction_id,
)

__all__ = [
    "ClientSettings", "PaymentError", "bkash_view", "connect", "list_payments",
    "load_client_settings", "payment_result", "payment_state", "provide_clarification",
    "purchase_result", "purchase_state", "refund", "refunds", "report_service_delivered",
    "report_service_failed",
    "send_customer_return", "send_provider_callback", "start_gate_purchase", "start_payment",
    "start_payment_page_purchase", "submit_transaction_id",
]
