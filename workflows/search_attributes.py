"""Search attributes the Web UI shows for every payment. No personal data, no secrets (§3.7 of
../shared/reference/temporal-practices.md: search attributes are indexed plaintext)."""

from temporalio.common import SearchAttributeKey

PAYMENT_PROVIDER = SearchAttributeKey.for_keyword("PaymentProvider")
PAYMENT_STAGE = SearchAttributeKey.for_keyword("PaymentStage")
MERCHANT_INVOICE = SearchAttributeKey.for_keyword("MerchantInvoice")
PROVIDER_PAYMENT_ID = SearchAttributeKey.for_keyword("ProviderPaymentId")

ALL = [PAYMENT_PROVIDER, PAYMENT_STAGE, MERCHANT_INVOICE, PROVIDER_PAYMENT_ID]
