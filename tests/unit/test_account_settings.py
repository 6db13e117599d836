"""Several merchant accounts' settings (issue 11 §4): from the environment or the TOML file,
validated at start with messages naming the account and the setting, never a value."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config import ConfigError, load_endpoint_settings, load_settings
from contracts.bkash import BkashPaymentRequest, is_bkash_workflow_id, workflow_id_for_invoice
from contracts.common import DEFAULT_ACCOUNT
from contracts.monetix import MonetixCallbackEvent, workflow_id_for_payment
from contracts.monetix_status import MonetixStatus
from contracts.refunds import RefundRequest, refunds_workflow_id
from merchant_client.monetix import callback_workflow_id
from worker import describe_accounts

DEFAULT = {"BKASH_BASE_URL": "https://tokenized.sandbox.bka.sh/v1.2.0-beta",
           "BKASH_APP_KEY": "k", "BKASH_APP_SECRET": "default-app-secret",
           "BKASH_USERNAME": "u", "BKASH_PASSWORD": "default-password",
           "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example",
           "PAYMENTS_LINK_SECRET": "a-result-link-secret-of-32-chars-or-more",
           "MONETIX_PROJECT_ID": "1234", "MONETIX_SECRET_KEY": "default-monetix-key"}
BRAND2 = {"BKASH__BRAND2__BASE_URL": "https://tokenized.pay.bka.sh/v1.2.0-beta",
          "BKASH__BRAND2__APP_KEY": "k2", "BKASH__BRAND2__APP_SECRET": "brand2-app-secret",
          "BKASH__BRAND2__USERNAME": "u2", "BKASH__BRAND2__PASSWORD": "brand2-password",
          "BKASH__BRAND2__VOID_PATH": "/tokenized/checkout/payment/confirm/capture/void",
          "MONETIX__BRAND2__PROJECT_ID": "5678", "MONETIX__BRAND2__SECRET_KEY": "brand2-monetix-key"}
SECRETS = ("default-app-secret", "default-password", "default-monetix-key", "brand2-app-secret",
           "brand2-password", "brand2-monetix-key")


def problems(env) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value)
    assert not any(secret in text for secret in SECRETS)
    return text


def test_the_single_account_settings_are_the_default_account_unchanged():
    s = load_settings(DEFAULT)
    assert list(s.bkash_by_account()) == [DEFAULT_ACCOUNT]
    assert s.bkash_by_account()[DEFAULT_ACCOUNT].credentials == s.bkash
    assert list(s.monetix_by_account()) == [DEFAULT_ACCOUNT]
    assert s.bkash_accounts == {} and s.monetix_accounts == {}


def test_accounts_from_the_environment_each_with_its_own_settings():
    s = load_settings({**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2, live",
                       **BRAND2, "MONETIX__LIVE__PROJECT_ID": "9999",
                       "MONETIX__LIVE__SECRET_KEY": "live-key"})
    brand2 = s.bkash_accounts["brand2"]
    assert brand2.credentials.app_key == "k2" and brand2.credentials.base_url.startswith(
        "https://tokenized.pay.bka.sh")
    assert brand2.paths.void.endswith("/capture/void") and s.bkash_paths.void.endswith(
        "/confirm/void")
    assert s.monetix_accounts["brand2"].project_id == 5678
    assert s.monetix_accounts["brand2"].payment_page.project_id == 5678
    assert "live" not in s.bkash_accounts and s.monetix_accounts["live"].project_id == 9999
    assert set(s.secrets) >= {"brand2-app-secret", "brand2-password", "brand2-monetix-key",
                              "live-key"}
    assert describe_accounts(s) == ("default (bKash, Monetix project 1234), brand2 (bKash, "
                                    "Monetix project 5678), live (Monetix project 9999)")


def test_accounts_from_the_toml_file_and_the_environment_together(tmp_path):
    f = tmp_path / "payments.toml"
    f.write_text('[payments]\naccounts = ["live"]\n'
                 '[bkash.accounts.brand-2]\nbase_url = "https://a.example/v1.2.0-beta"\n'
                 'app_key = "file-key"\napp_secret = "s"\nusername = "u3"\npassword = "p"\n'
                 '[monetix.accounts.brand-2]\nproject_id = 4321\nsecret_key = "mk"\n'
                 '[monetix.accounts.live]\nproject_id = 9999\nsecret_key = "live-key"\n')
    s = load_settings({**DEFAULT, "PAYMENTS_CONFIG_FILE": str(f), "PAYMENTS_ACCOUNTS": "brand2",
                       **BRAND2, "BKASH__BRAND_2__APP_KEY": "env-key"})
    assert set(s.bkash_accounts) == {"brand2", "brand-2"}
    assert s.bkash_accounts["brand-2"].credentials.app_key == "env-key"  # env over file
    assert s.monetix_accounts["brand-2"].project_id == 4321
    assert s.monetix_accounts["live"].project_id == 9999
    endpoint = load_endpoint_settings({**DEFAULT, "PAYMENTS_CONFIG_FILE": str(f),
                                       "PAYMENTS_ACCOUNTS": "brand2", **BRAND2})
    assert endpoint.monetix_accounts == {1234: "default", 5678: "brand2", 4321: "brand-2",
                                         9999: "live"}
    assert endpoint.monetix_projects[4321].get_secret_value() == "mk"


def test_a_missing_or_malformed_account_setting_names_the_account_and_the_setting():
    env = {**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2,empty", **BRAND2,
           "BKASH__BRAND2__BASE_URL": "not a url", "MONETIX__BRAND2__PROJECT_ID": "-3",
           "BKASH__BRAND2__REFUND_API": "v3"}
    del env["BKASH__BRAND2__PASSWORD"]
    text = problems(env)
    assert ("account brand2: BKASH__BRAND2__PASSWORD (TOML [bkash.accounts.brand2] password) is "
            "not set") in text
    assert "account brand2: BKASH__BRAND2__BASE_URL" in text and "absolute http(s) URL" in text
    assert "account brand2: MONETIX__BRAND2__PROJECT_ID" in text and "positive number" in text
    assert "account brand2: BKASH__BRAND2__REFUND_API" in text and "v1 or v2" in text
    assert "account empty: listed in PAYMENTS_ACCOUNTS but has no settings" in text


def test_a_setting_of_an_unlisted_account_or_a_misspelt_one_is_refused():
    text = problems({**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2", **BRAND2,
                     "BKASH__BRAND3__APP_SECRET": "brand2-app-secret",
                     "MONETIX__BRAND2__SECRET_KY": "brand2-monetix-key"})
    assert "BKASH__BRAND3__APP_SECRET: no such account setting" in text
    assert "MONETIX__BRAND2__SECRET_KY: no such account setting" in text


def test_account_ids_are_checked():
    text = problems({**DEFAULT, "PAYMENTS_ACCOUNTS": "Brand2,default,a-b,a_b," + "x" * 33,
                     "BKASH__A_B__APP_KEY": "k"})
    assert "account id 'Brand2' must be 1-32 lower-case letters" in text
    assert "'default' is the account of the BKASH_* and MONETIX_* settings" in text
    assert "accounts a-b and a_b have the same setting names" in text
    assert "account id 'xxxxxxxx" in text


def test_two_accounts_never_share_a_credential_set_or_a_project():
    text = problems({**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2", **BRAND2,
                     "BKASH__BRAND2__BASE_URL": DEFAULT["BKASH_BASE_URL"],
                     "BKASH__BRAND2__APP_KEY": "k", "BKASH__BRAND2__USERNAME": "u",
                     "MONETIX__BRAND2__PROJECT_ID": "1234"})
    assert "accounts default and brand2 have the same bKash credential set" in text
    assert "accounts default and brand2 have the same Monetix project 1234" in text
    with pytest.raises(ConfigError, match="same Monetix project 1234"):
        load_endpoint_settings({**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2", **BRAND2,
                                "MONETIX__BRAND2__PROJECT_ID": "1234"})


def test_the_endpoint_needs_only_the_monetix_settings_of_an_account():
    # brand2 has bKash only: nothing for the endpoint to verify, and no complaint.
    env = {**DEFAULT, "PAYMENTS_ACCOUNTS": "brand2",
           **{k: v for k, v in BRAND2.items() if k.startswith("BKASH__")}}
    assert load_endpoint_settings(env).monetix_accounts == {1234: "default"}
    with pytest.raises(ConfigError) as info:
        load_endpoint_settings({**env, "MONETIX__BRAND2__PROJECT_ID": "5678"})
    assert "account brand2: MONETIX__BRAND2__SECRET_KEY" in str(info.value)


def test_workflow_ids_keep_the_default_accounts_and_name_any_other():
    assert workflow_id_for_invoice("INV-1") == "bkash-INV-1"
    assert workflow_id_for_invoice("INV-1", "brand2") == "bkash@brand2:INV-1"
    assert workflow_id_for_payment("P-1") == "monetix-P-1"
    assert workflow_id_for_payment("P-1", "brand2") == "monetix@brand2:P-1"
    assert refunds_workflow_id("monetix", "P-1", "brand2") == "refunds-monetix@brand2:P-1"
    # A default-account invoice can never produce another account's id.
    assert workflow_id_for_invoice("@brand2:INV-1") != workflow_id_for_invoice("INV-1", "brand2")
    assert is_bkash_workflow_id("bkash@brand2:INV-1") and not is_bkash_workflow_id("monetix-P")


def test_requests_name_a_valid_account_or_the_default():
    req = BkashPaymentRequest(invoice_number="INV-1", amount_poisha=100,
                              callback_base_url="https://shop.example")
    assert req.account_id == DEFAULT_ACCOUNT and req.workflow_id == "bkash-INV-1"
    # An input recorded before accounts existed reads as the default account.
    old = BkashPaymentRequest.model_validate_json(req.model_dump_json(exclude={"account_id"}))
    assert old.account_id == DEFAULT_ACCOUNT
    with pytest.raises(ValidationError, match="account_id 'Brand 2' must be"):
        BkashPaymentRequest(invoice_number="INV-1", amount_poisha=100,
                            callback_base_url="https://shop.example", account_id="Brand 2")
    with pytest.raises(ValidationError, match="account_id"):
        RefundRequest(provider="bkash", payment_key="INV-1", refund_id="R", amount_poisha=1,
                      reason="r", sku="s", account_id="a:b")


def test_a_callback_goes_to_its_accounts_purchase_or_refunds_ledger():
    status = MonetixStatus.from_body({"project_id": 5678, "payment": {"id": "P-1",
                                                                       "status": "success"}},
                                     signature_verified=True)
    event = MonetixCallbackEvent(status=status, project_id=5678, account_id="brand2")
    assert callback_workflow_id(event) == "monetix@brand2:P-1"
    assert callback_workflow_id(MonetixCallbackEvent(status=status)) == "monetix-P-1"
