"""What both lifecycles share: the model base, the task queue, the callback-URL rule and the names
of the search attributes the Web UI shows."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

TASK_QUEUE = "payments"
DEFAULT_MAX_AMOUNT_POISHA = 500_000_00  # 500,000 BDT; override with PAYMENTS_MAX_AMOUNT_POISHA

# Merchant accounts (README "Several merchant accounts"): each payment names the account it is made
# in — a bKash credential set and/or a Monetix project, configured in the worker — by a short,
# non-secret id. "default" is the account of the single-account settings (BKASH_*, MONETIX_*) and
# of every payment started before accounts existed.
DEFAULT_ACCOUNT = "default"
# Every provider call's activity heartbeats while the call is pending (activities/heartbeat.py): a
# worker that dies mid-call has its attempt retried on a live worker after this, not after the
# start-to-close timeout (issue 14 §2). Well under the provider timeout (30 s), well over a busy
# event loop's stall.
PROVIDER_HEARTBEAT = timedelta(seconds=10)
ACCOUNT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# The activity error of a payment naming an account the worker has no settings for.
UNKNOWN_ACCOUNT = "PaymentAccountUnknown"


def check_account_id(v: str, name: str = "account_id") -> str:
    if not isinstance(v, str) or not ACCOUNT_ID.fullmatch(v):
        raise ValueError(f"{name} {str(v)[:40]!r} must be 1-32 lower-case letters, digits, '_' or "
                         "'-', starting with a letter or digit (e.g. default, brand2, live)")
    return v


def account_workflow_id(prefix: str, key: str, account_id: str = DEFAULT_ACCOUNT) -> str:
    """``<prefix>-<key>`` for the default account (the ids of every payment before accounts),
    ``<prefix>@<account>:<key>`` for another: an account id holds no ':' and no default id starts
    with ``<prefix>@``, so two accounts' payments of the same key never share a workflow."""
    if account_id == DEFAULT_ACCOUNT:
        return f"{prefix}-{key}"
    return f"{prefix}@{check_account_id(account_id)}:{key}"


class Model(BaseModel):
    """Unknown fields are ignored, so a field added later never breaks replay of an old history."""

    model_config = ConfigDict(extra="ignore")


class SearchAttribute(StrEnum):
    """Keyword search attributes every payment carries (registered on the server by the project).

    No personal data, no secrets (temporal-practices.md §3.7: search attributes are indexed
    plaintext)."""

    PAYMENT_PROVIDER = "PaymentProvider"
    PAYMENT_STAGE = "PaymentStage"
    MERCHANT_INVOICE = "MerchantInvoice"
    PROVIDER_PAYMENT_ID = "ProviderPaymentId"
    REFUNDED_POISHA = "RefundedPoisha"  # a refunds workflow's refunded total (Int)
    # The merchant account's id (never a credential), set at start by the merchant client.
    PAYMENT_ACCOUNT = "PaymentAccount"
    # A notification stream's events whose delivery budget ran out (Int; README "Notifications").
    NOTIFICATIONS_UNDELIVERED = "NotificationsUndelivered"
    # A reconciliation run's divergences between the provider and the project (Int).
    RECONCILIATION_DIVERGENCES = "ReconciliationDivergences"
    # When the payment entered the PaymentStage it shows (Datetime): a payment resting in a stage
    # that should last seconds (CAPTURING, VOIDING, REFUNDING) for longer is stalled (README
    # "Metrics": payments_stalled). Set with the stage, by the merchant client at start and by the
    # workflow at each stage upsert.
    PAYMENT_STAGE_SINCE = "PaymentStageSince"

    @property
    def kind(self) -> str:
        """The Temporal search-attribute type: Keyword, except the counts and totals (Int) and
        the stage's time (Datetime)."""
        if self is SearchAttribute.PAYMENT_STAGE_SINCE:
            return "Datetime"
        return "Int" if self in _INT_ATTRIBUTES else "Keyword"


_INT_ATTRIBUTES = frozenset({SearchAttribute.REFUNDED_POISHA,
                             SearchAttribute.NOTIFICATIONS_UNDELIVERED,
                             SearchAttribute.RECONCILIATION_DIVERGENCES})


class Provider(StrEnum):
    BKASH = "bkash"
    MONETIX = "monetix"


class TimelineEvent(Model):
    """One line of a payment's timeline (the ``state`` query); ``stage`` is the workflow's own."""

    at: datetime
    stage: str
    event: str


def check_callback_base_url(v: str) -> str:
    """The merchant endpoint's public base URL: absolute http(s), a plain host name or IP, an
    optional numeric port, no credentials, query or fragment, nothing invisible. Shared by every
    request model."""
    problem = f"callback_base_url {v!r} must be an absolute http(s) URL without query or fragment"
    if any(unicodedata.category(c).startswith(("C", "Z")) for c in v):
        raise ValueError(problem)
    parts = urlsplit(v)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(problem) from None
    host = parts.hostname or ""
    plain_host = re.fullmatch(r"[A-Za-z0-9.-]+", host) or (":" in host and re.fullmatch(
        r"[0-9A-Fa-f:.]+", host))
    if parts.scheme not in ("http", "https") or not plain_host or "@" in parts.netloc \
            or parts.query or parts.fragment:
        raise ValueError(problem)
    return v.rstrip("/")
