"""The typed search-attribute keys, built from the names in contracts (the Web UI's columns)."""

from temporalio.common import SearchAttributeKey

from contracts.common import SearchAttribute

PAYMENT_PROVIDER = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_PROVIDER.value)
PAYMENT_STAGE = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_STAGE.value)
MERCHANT_INVOICE = SearchAttributeKey.for_keyword(SearchAttribute.MERCHANT_INVOICE.value)
PROVIDER_PAYMENT_ID = SearchAttributeKey.for_keyword(SearchAttribute.PROVIDER_PAYMENT_ID.value)
REFUNDED_POISHA = SearchAttributeKey.for_int(SearchAttribute.REFUNDED_POISHA.value)
# Set at start by the merchant client; no workflow upserts it (no command of its own).
PAYMENT_ACCOUNT = SearchAttributeKey.for_keyword(SearchAttribute.PAYMENT_ACCOUNT.value)
NOTIFICATIONS_UNDELIVERED = SearchAttributeKey.for_int(
    SearchAttribute.NOTIFICATIONS_UNDELIVERED.value)
RECONCILIATION_DIVERGENCES = SearchAttributeKey.for_int(
    SearchAttribute.RECONCILIATION_DIVERGENCES.value)
PAYMENT_STAGE_SINCE = SearchAttributeKey.for_datetime(SearchAttribute.PAYMENT_STAGE_SINCE.value)

ALL = [PAYMENT_PROVIDER, PAYMENT_STAGE, MERCHANT_INVOICE, PROVIDER_PAYMENT_ID, REFUNDED_POISHA,
       PAYMENT_ACCOUNT, NOTIFICATIONS_UNDELIVERED, RECONCILIATION_DIVERGENCES, PAYMENT_STAGE_SINCE]
