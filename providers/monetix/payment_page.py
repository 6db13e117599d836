"""Monetix Payment Page links: the signed URL and the ``EPayWidget`` parameters (reference §5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus, urlencode

from contracts.monetix_requests import PaymentPageParams
from providers.monetix.config import MonetixPaymentPageConfig
from providers.monetix.errors import revalidate
from providers.monetix_signing import sign

# Seed, Payment Page table: `force_payment_method: 'bkash-wallet'` skips the method selection page.
BKASH_PAYMENT_METHOD = "bkash-wallet"


def _payment_page_params(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> dict[str, Any]:
    p = revalidate(PaymentPageParams, params, getattr(params, "payment_id", None))
    out: dict[str, Any] = {
        "project_id": config.project_id,
        "payment_id": p.payment_id,
        "customer_id": p.customer_id,
        "customer_first_name": p.first_name,
        "customer_last_name": p.last_name,
        "customer_email": p.email,
    }
    if p.account_number is not None:
        out["customer_account_number"] = p.account_number
    out["payment_currency"] = p.currency
    out["payment_amount"] = p.amount_poisha
    if p.description is not None:
        out["payment_description"] = p.description
    out["force_payment_method"] = BKASH_PAYMENT_METHOD
    if p.merchant_callback_url is not None:
        out["merchant_callback_url"] = p.merchant_callback_url
    return out


def epay_widget_params(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> dict[str, Any]:
    """The signed ``configObj`` for ``EPayWidget.run(...)`` (seed, Payment Page example; §5.2)."""
    out = _payment_page_params(config, params)
    out["signature"] = sign(out, config.secret_key.get_secret_value())
    return out


def build_payment_page_url(config: MonetixPaymentPageConfig, params: PaymentPageParams) -> str:
    """``{pp}/payment?{params}&signature={sig}``, signed over the raw values (§5.2, vector P4).

    Every value is a str or an int, so the query text and the signed text agree (§5.2 pitfall: a
    Python ``True`` would be urlencoded as "True" but signed as "1").
    """
    out = _payment_page_params(config, params)
    sig = sign(out, config.secret_key.get_secret_value())
    return f"{config.base_url.rstrip('/')}/payment?{urlencode(out)}&signature={quote_plus(sig)}"
