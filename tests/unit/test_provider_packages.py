"""The providers' public names stay where callers import them after the split into one concern
per module, and every error kind is the contracts' enum value."""

from __future__ import annotations

import contracts.monetix_requests as requests
import contracts.monetix_status as status
import providers.bkash as bkash
import providers.bkash_errors as bkash_errors
import providers.bkash_tokens as bkash_tokens
import providers.monetix as monetix
from contracts.bkash import BkashErrorKind
from contracts.monetix import MonetixErrorKind
from providers import bkash_codes


def test_monetix_public_names_are_the_one_object_wherever_imported():
    for name in monetix.__all__:
        assert getattr(monetix, name) is not None
    assert monetix.MonetixSaleRequest is requests.MonetixSaleRequest
    assert monetix.clarification_problems is requests.clarification_problems
    assert monetix.MonetixStatus is status.MonetixStatus
    assert monetix.FINAL_PAYMENT_STATUSES is status.FINAL_PAYMENT_STATUSES
    assert monetix.MonetixGateClient.__module__ == "providers.monetix.gate"
    assert monetix.build_payment_page_url.__module__ == "providers.monetix.payment_page"


def test_every_monetix_error_kind_is_a_contracts_kind():
    errors = [monetix.MonetixError, monetix.MonetixInvalidRequest, monetix.MonetixRequestRejected,
              monetix.MonetixDuplicatePayment, monetix.MonetixPaymentNotFound,
              monetix.MonetixResultUnknown, monetix.MonetixBadSignature]
    assert {e.kind for e in errors} <= set(MonetixErrorKind)
    assert len({e.kind for e in errors}) == len(errors)


def test_bkash_callers_keep_importing_client_credentials_and_token_stores_from_providers_bkash():
    for name in ("BkashClient", "BkashCredentials", "BkashPaths", "FileTokenStore", "TokenManager",
                 "TokenState", "TokenStore", "InMemoryTokenStore"):
        assert getattr(bkash, name) is not None
    assert bkash.FileTokenStore is bkash_tokens.FileTokenStore
    assert bkash.TokenManager is bkash_tokens.TokenManager
    assert set(bkash_errors.ALL_KINDS) <= set(BkashErrorKind)


def test_bkash_code_classes_are_defined_once_and_shared():
    assert bkash_errors.RETRYABLE_CODES is bkash_codes.RETRYABLE_CODES
    assert bkash_errors.MERCHANT_CONFIG_CODES == set(bkash_codes.MERCHANT_CONFIG_FIXES)
    assert {bkash_codes.INVALID_PAYMENT_STATE, bkash_codes.EXECUTION_PREREQUISITE_NOT_MET} \
        == bkash_errors.INVALID_STATE_CODES
    assert bkash_codes.PAYMENT_ALREADY_COMPLETED in bkash_errors.ALREADY_SETTLED_CODES
