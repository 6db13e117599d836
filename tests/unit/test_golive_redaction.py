"""golive.redact: the one rule every line of bKash's go-live pack goes through."""

import copy

from golive.redact import REDACTED, mask_wallets, redact, secrets_in

TOKEN = "eyJraWQiOiJhYmMifQ.eyJzdWIiOiJzYW5kYm94In0.c2lnbmF0dXJl"


def test_secret_fields_are_removed_whole_at_any_depth_and_in_any_case():
    body = {"app_key": "key-1", "app_secret": "s3cr3t-value",
            "nested": [{"PASSWORD": "p4ss-word"}, {"id_token": TOKEN, "Refresh_Token": {"a": 1}}],
            "headers": {"Authorization": TOKEN, "authorization": 12345, "X-App-Key": "key-1"}}
    before = copy.deepcopy(body)
    assert redact(body) == {
        "app_key": "key-1", "app_secret": REDACTED,
        "nested": [{"PASSWORD": REDACTED}, {"id_token": REDACTED, "Refresh_Token": REDACTED}],
        "headers": {"Authorization": REDACTED, "authorization": REDACTED, "X-App-Key": "key-1"}}
    assert body == before  # the recorded traffic is left as it was


def test_known_secret_values_are_removed_wherever_they_show_up():
    url = f"https://merchant.example/bkash/return/bkash-INV-1/{TOKEN}?status=success"
    assert redact(url, {TOKEN}) == f"https://merchant.example/bkash/return/bkash-INV-1/{REDACTED}" \
                                   "?status=success"
    assert redact({"message": f"token {TOKEN} refused"}, [TOKEN]) == \
        {"message": f"token {REDACTED} refused"}
    # A longer secret that holds a shorter one goes whole, not as a left-over tail.
    assert redact(f"x{TOKEN}y", {TOKEN, TOKEN[:20]}) == f"x{REDACTED}y"


def test_too_short_values_are_not_scrubbed_from_text_but_their_fields_still_are():
    assert redact("amount 12345 BDT", {"1234"}) == "amount 12345 BDT"
    assert redact({"password": "1234"}, {"1234"}) == {"password": REDACTED}


def test_wallet_numbers_keep_a_prefix_and_the_last_three_digits():
    assert mask_wallets("01823074817") == "018*****817"
    assert mask_wallets("8801770618575") == "88017*****575"  # Search's customerMsisdn
    assert redact({"payerAccount": "01770618575", "note": "wallet 01823074818, OTP 123456"}) == \
        {"payerAccount": "017*****575", "note": "wallet 018*****818, OTP 123456"}
    assert redact("GET /cb?wallet=01619777282&x=1") == "GET /cb?wallet=016*****282&x=1"


def test_digit_runs_that_are_no_wallet_are_left_alone():
    for text in ("1796186513163",  # epoch milliseconds in a paymentID
                 "018230748171",  # 12 digits
                 "0182307481",  # 10 digits
                 "TR0011LMXSiu71796186513163", "500.00", "02123074817"):
        assert mask_wallets(text) == text


def test_numbers_booleans_and_none_pass_through():
    assert redact({"expires_in": 3600, "ok": True, "x": None, "f": 1.5}) == \
        {"expires_in": 3600, "ok": True, "x": None, "f": 1.5}


def test_secrets_in_collects_what_a_grant_answer_hands_out():
    answer = {"statusCode": "0000", "id_token": TOKEN, "refresh_token": "r-token-value",
              "inner": [{"app_secret": "s3cr3t-value"}], "expires_in": 3600}
    assert secrets_in(answer) == {TOKEN, "r-token-value", "s3cr3t-value"}
