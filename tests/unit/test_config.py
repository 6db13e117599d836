import pytest

from config import ConfigError, load_settings

GOOD = {"BKASH_BASE_URL": "https://tokenized.sandbox.bka.sh/v1.2.0-beta",
        "BKASH_APP_KEY": "k", "BKASH_APP_SECRET": "very-secret", "BKASH_USERNAME": "u",
        "BKASH_PASSWORD": "hunter22", "PAYMENTS_CALLBACK_BASE_URL": "https://shop.example",
        "PAYMENTS_LINK_SECRET": "a-result-link-secret-of-32-chars-or-more"}


def test_complete_environment_loads():
    s = load_settings(GOOD)
    assert s.bkash.app_key == "k" and s.callback_base_url == "https://shop.example"
    assert s.bkash_paths.void.endswith("/payment/confirm/void")


def test_missing_settings_are_named_and_secrets_are_not_echoed():
    env = dict(GOOD)
    del env["BKASH_APP_SECRET"], env["PAYMENTS_CALLBACK_BASE_URL"]
    env["BKASH_BASE_URL"] = "not a url"
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    text = str(info.value)
    assert "BKASH_APP_SECRET is not set" in text
    assert "PAYMENTS_CALLBACK_BASE_URL is not set" in text
    assert "BKASH_BASE_URL must be an absolute http(s) URL" in text
    assert "hunter22" not in text


def test_toml_file_is_read_and_environment_overrides_it(tmp_path):
    f = tmp_path / "payments.toml"
    f.write_text('[bkash]\nbase_url = "https://a.example/v1.2.0-beta"\napp_key = "file-key"\n'
                 'app_secret = "x"\nusername = "u"\npassword = "p"\nvoid_path = "/tokenized/checkout/payment/confirm/capture/void"\n'
                 '[payments]\ncallback_base_url = "https://shop.example"\n'
                 'link_secret = "a-result-link-secret-of-32-chars-or-more"\n')
    s = load_settings({"PAYMENTS_CONFIG_FILE": str(f), "BKASH_APP_KEY": "env-key"})
    assert s.bkash.app_key == "env-key"
    assert s.bkash_paths.void.endswith("/capture/void")


def test_secrets_do_not_print():
    s = load_settings(GOOD)
    assert "very-secret" not in repr(s) and "hunter22" not in str(s)


def test_stalled_payment_settings_default_to_capturing_voiding_refunding_after_15_minutes():
    s = load_settings(GOOD)
    assert (s.stall_stages, s.stall_after_seconds, s.stall_check_seconds) == (
        ("CAPTURING", "VOIDING", "REFUNDING"), 900.0, 60.0)
    s = load_settings({**GOOD, "PAYMENTS_STALL_STAGES": "capturing, awaiting_result",
                       "PAYMENTS_STALL_AFTER_SECONDS": "300"})
    assert (s.stall_stages, s.stall_after_seconds) == (("CAPTURING", "AWAITING_RESULT"), 300.0)


def test_a_stall_stage_that_is_not_a_resting_stage_or_a_bad_threshold_is_named():
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, "PAYMENTS_STALL_STAGES": "CAPTURING,CAPTURED,EXECUTING",
                       "PAYMENTS_STALL_AFTER_SECONDS": "soon"})
    text = str(info.value)
    assert "PAYMENTS_STALL_STAGES: CAPTURED, EXECUTING is not a stage" in text
    assert "PAYMENTS_STALL_AFTER_SECONDS must be a positive number" in text
