"""Monetix signing (reference §2): every vector of §2.4 the project relies on, plus the §2.2 edge cases.

Vectors come from the official SDK tests (P*, G*, M*), the ECOMMPAY docs as quoted by a third-party spec
(E*), and that spec's own Cyrillic vector (O3). If one of these fails, the signer no longer matches the
platform: do not "fix" the expected value.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from providers.monetix_signing import (
    RawNumber,
    extract_signature,
    loads,
    sign,
    sign_request,
    signing_string,
    verify,
)

# ---------------------------------------------------------------------------------------------- data

P1 = {"payment": {"id": "test-payment", "status": "success"}, "some_bool_param": True, "frame_mode": "popup"}
P1_SIG = "TZS0J65ReNUMgKzeXUey9xOGGyC7r4OhsFXt/3H8XZM2Le8Wot2E1NIjeSPOyV1F3sUU6F3kfo9om2dhbe3ieA=="

P2_JSON = (
    '{"payment":{"id":"test-payment"},"errors":[{"code":"123","message":"grand crash",'
    '"description":["description-str",{"description1":1}]},'
    '{"code":"456","message":"minor crash","description":null}]}'
)
P2_STRING = (
    "errors:0:code:123;errors:0:description:0:description-str;errors:0:description:1:description1:1;"
    "errors:0:message:grand crash;errors:1:code:456;errors:1:description:;errors:1:message:minor crash;"
    "payment:id:test-payment"
)
P2_SIG = "dxjnun8oySSl0CWlhhjy/k1V9CZcCtaHvu/Y5qJQbWHq8wd6TqTUt4bIfHrlWxT8ba9NOJfkgGHrGc5OgyQVGA=="

P3_JSON = (
    '{"customer":{"project_id":0,"id":"sutm_id"},"card":{"pan":"4242424242424242","year":2020,"month":8,'
    '"card_holder":"John Smith","cvv":"123","save":true},"frame_mode":"popup"}'
)
P3_SIG = "lY0LTSAzpR7zGce5qfYGacOuYlHGWqkMcQlqmjlsDDZI2gVcE1qVeWANnkIR7mdOqRXJnL1kO0lUmkQ0YYLWRg=="

# Payment Page parameters: interface_type travels as a JSON *string* (§3.1), signed verbatim.
P4 = {"project_id": 100, "interface_type": '{"id":23}', "payment_id": "test payment id", "payment_description": "B&W"}
P4_SIG = "97JFQpAyJ4HPfGVedJh0M1MqQDOFt/MCbdh8VrsT7DdRyTBDAF2mvUOsDANx1ZPfbvZg0+VUbF43xJnq0jEeLA=="
P4_URL_PREFIX = (
    "https://paymentpage.ecommpay.com/payment?project_id=100&interface_type=%7B%22id%22%3A23%7D"
    "&payment_id=test+payment+id&payment_description=B%26W&signature=97JFQ"
)

# PHP SDK tests/data/callbackFormats.php (secret "123"): signature in general.signature, placeholder
# values, empty arrays ("body":[]), a mixed-case key ("AuthCode", "redirectData").
P5 = [
    '{"general":{"signature":"O5nJHj7yS4/6XC81VijFZFtEVhr6+OJ8Rb4FaRmHWR9Ti2H9L9jcvS8f9x2hQ5NgQQwlsEocrTb+YrDfnsSVHQ=="},'
    '"project_id":"[2] projectId","payment":{"id":"[40] paymentId","type":"[26] transactionType",'
    '"status":"[27] transactionStatus","description":"[44] description","date":"[30] internalProcessingDateTime",'
    '"method":"[17] paymentMethodTitle","sum":"[23] transactionSum","merchant_refund_id":"[451] merchantRefundId"},'
    '"account":{"token":"[41] token","number":"[56] accountNumber"},"customer":{"id":"[18] userLogin","phone":"[76] phone"},'
    '"clarification_fields":"[82] clarificationFields","avs_result":"[83] avsResult",'
    '"provider_extra_fields":"[90] providerExtraFields","recurring":{"id":"[100] id","currency":"[107] currency",'
    '"valid_thru":"[108] valid_thru"},"operation":{"id":"[192] operation_id","type":"[193] operation_type",'
    '"status":"[194] operation_status","date":"[195] operation_date","created_date":"[196] operation_created_date",'
    '"request_id":"[197] operation_request_id","sum_initial":{"amount":"[198] operation_sum_initial_amount",'
    '"currency":"[199] operation_sum_initial_currency"},"sum_converted":{"amount":"[200] operation_sum_converted_amount",'
    '"currency":"[201] operation_sum_converted_currency"},"code":"[202] operation_code","message":"[203] operation_message",'
    '"eci":"[205] operation_eci","provider":{"id":"[206] operation_provider_id",'
    '"payment_id":"[207] operation_provider_payment_id","auth_code":"[210] operation_provider_auth_code",'
    '"endpoint_id":"[211] operation_provider_endpoint_id","date":"[212] operation_provider_date"}}}',
    '{"general":{"signature":"R5wq+3/y4lG9ty5sHR6MuscWBRg/bzAo9dxlMkVOUhQ+KpS7FwHMx+5saiLQnn90Rl7rhp1U37dgThSorpn1Ew==",'
    '"project_id":"[2] projectId"},"request":{"action":"[36] action","errors":"[38] errors","id":"[3] requestId",'
    '"status":"[37] status"},"customer":{"id":"[18] userLogin"},"token_status":"[71] status",'
    '"token_created_at":"[70] created_at","token":"[68] tokenString"}',
    '{"general":{"signature":"+XNqUNPEo/mr1I3H/tGRCnNoWxqyqpzQIRIWv3eXfEzhfrqdZXHKHOWYlVryp1WayLTImLSqNUaDoqi3/G/y9w=="},'
    '"project_id":"[2] projectId","recurring":{"id":"[100] id","status":"[101] status","type":"[102] type",'
    '"currency":"[107] currency","exp_year":"[103] exp_year","exp_month":"[104] exp_month","period":"[105] period",'
    '"time":"[106] time"}}',
    '{"general":{"signature":"Cm0L/+dLPg6Au/jEG0yr1FktzA1QwojRp95R9o5O4Wxx6MzjwTrso5B4rBXekM/fp5znut0WVGLFGG+TtJjuHQ=="},'
    '"redirectData":{"method":"GET","body":[],"encrypted":[],"url":"url data"},"payment":{"id":"qwerty123"}}',
    '{"general":{"signature":"NpJuOiG6jSzh6CDNBYT9fqKZs9PkaXZQr3aqaN5yTvZdFj1sJaqWEhl1o4wCxyen2w0VhwdJ8p6ddplEqMWhUg==",'
    '"project_id":"[2] projectId"},"card":{"exp_month":"[73] month","exp_year":"[72] year","holder":"[74] holderName",'
    '"number":"[21] cardPanMasked"},"request":{"action":"[36] action","errors":"[38] errors","status":"[37] status",'
    '"id":"[3] requestId"},"customer":{"id":"[18] userLogin"},"token_status":"[71] status",'
    '"token_created_at":"[70] created_at","token":"[68] tokenString"}',
    '{"general":{"signature":"FZWW+aSwLzMDpS7A1IVNZ6uLYHphXIX8e9zdkHQB9IAqqWXKB5f/21vci2dv3h+kIB2kqTY2OKZCURs6v0th/w=="},'
    '"operation":{"sum_initial":{"amount":"[198] operation_sum_initial_amount",'
    '"currency":"[199] operation_sum_initial_currency"},"sum_converted":{"amount":"[200] operation_sum_converted_amount",'
    '"currency":"[201] operation_sum_converted_currency"},"eci":"[205] operation_eci",'
    '"provider":{"id":"[206] operation_provider_id","payment_id":"[207] operation_provider_payment_id",'
    '"auth_code":"[210] operation_provider_auth_code","endpoint_id":"[211] operation_provider_endpoint_id",'
    '"date":"[212] operation_provider_date"},"id":"[192] operation_id","type":"[193] operation_type",'
    '"status":"[194] operation_status","date":"[195] operation_date","created_date":"[196] operation_created_date",'
    '"request_id":"[197] operation_request_id"},"customer":{"phone":"[76] phone","id":"[18] userLogin"},'
    '"recurring":{"id":"[100] id","currency":"[107] currency","valid_thru":"[108] valid_thru"},'
    '"provider_extra_fields":"[90] providerExtraFields","clarification_fields":"[82] clarificationFields",'
    '"avs_result":"[83] avsResult","account":{"token":"[41] token","number":"[56] accountNumber"},'
    '"project_id":"[2] projectId","payment":{"id":"[40] paymentId","type":"[26] transactionType",'
    '"status":"[27] transactionStatus","description":"[44] description","date":"[30] internalProcessingDateTime",'
    '"method":"[17] paymentMethodTitle","sum":"[23] transactionSum"},"errors":"[38] errors"}',
    '{"general":{"project_id":"[43] site_id","payment_id":"[39] order_id",'
    '"signature":"q1aOeD+qH3L050pmRbw65p6vmUqMKT6f0hu1xGgMuh77Z9wDQvV7ySDH1y/mjFqy9Sc1qbnLDp2U83U8bWarIg=="},'
    '"threeds2":"[171] threeds2","display_data":"[141] displayData","additional_terminal_data":"[127] terminalAdditionalInfo",'
    '"payment":{"cascading_with_redirect":"[125] cascadingRedirect","is_new_attempts_available":"[66] isNewAttemptsAvailable",'
    '"attempts_timeout":"[67] attemptsTimeout","provider_id":"[45] id","status":"[57] transactionStatusNonMapped",'
    '"id":"[40] paymentId","method":"[17] paymentMethodTitle","date":"[30] internalProcessingDateTime",'
    '"result_code":"[33] processorCode","result_message":"[34] processorMessage",'
    '"split_with_redirect":"[381] splitWithRedirect"},"provider_extra_fields":"[90] providerExtraFields",'
    '"rrn":"[110] rrn","AuthCode":"[31] authCode","return_url":"[113] redirectData","qr_code":"[114] qrCodeData",'
    '"acs":"[12] acsData","clarification_fields":"[82] clarificationFields","avs_result":"[83] avsResult",'
    '"account":{"number":"[56] accountNumber","token":"[41] token"},"customer":{"id":"[18] userLogin"},'
    '"errors":"[38] errors","request_id":"[3] requestId","transaction":{"id":"[1] transactionId",'
    '"date":"[30] internalProcessingDateTime","type":"[26] transactionType"},"description":"[44] description",'
    '"sum_request":{"amount":"[48] amount_incoming","currency":"[49] currency_incoming"},'
    '"sum_real":{"amount":"[24] transactionAmountChannel","currency":"[25] transactionCurrencyChannel"},'
    '"sum_refund":{"amount":"[46] transactionAmountRefund","currency":"[47] transactionCurrencyRefund"}}',
    '{"general":{"project_id":"[2] projectId",'
    '"signature":"OIRodGzsjGGrrKpvH0hOE64zNKBrS7SvGbzxYSyhLmsoPCv2KuFXXQ6LXML7UnZWyLsvHfNV5TS0x4zmP0vXCw=="},'
    '"card":{"exp_month":"[73] month","exp_year":"[72] year","holder":"[74] holderName","number":"[21] cardPanMasked",'
    '"country":"[86] country","issuer_name":"[88] issuer_name"},"request":{"action":"[36] action","errors":"[38] errors",'
    '"status":"[37] status","id":"[3] requestId"},"customer":{"id":"[18] userLogin"},"token_status":"[71] status",'
    '"token_created_at":"[70] created_at","token":"[68] tokenString"}',
]

G1 = {
    "project_id": 11,
    "payment_currency": "EUR",
    "frame_mode": "popup",
    "some_bool_param": True,
    "two_levels_param": {"param1": 1, "param2": 2},
}
G1_SIG = "ehwG+e+Sq6b0QEek2hmHGUFzViX9/Xfcgnh0Ysn1+AqCY8BsKhC/Vcyr4XH8CKXW3iS0vW9S2mTwOt/0Ozf5pg=="

G2_JSON = '{"a":{"b":1111111111111111,"c":2},"d":false,"f":["g",{"h":7,"i":{"k":8}}],"e":[4,5],"j":null}'
G2_STRING = "a:b:1111111111111111;a:c:2;d:0;e:0:4;e:1:5;f:0:g;f:1:h:7;f:1:i:k:8;j:"

M1 = {"payment": {"id": "test.test-payment", "status": "success"}}
M1_SIG = "OonQm2ElTzZU80dNnsrS/ulnGU/eEMg7U1jfLRiKn0zx3GmnEOP2ne/pUOJ9LkzntYT7llgRhTpbxcT3ldHyEA=="

M2 = {
    "project_id": 123,
    "payment_id": "test_payment",
    "account_token": "qwerty",
    "interface_type": '{"id": 21}',
    "best_before": "2200-12-12T12:12:12+03:00",
}
M2_SIG = "Isx3ivYhho57twVTh943HLLger8nUAxu8599dbieXVnbQHgl5FJ+UrMohHXUW3uZ16qBam/4nvxeFZUvaSF6gg=="

E1 = {
    "project_id": 12345,
    "payment_id": "X03936",
    "payment_amount": 2035,
    "payment_currency": "USD",
    "payment_description": "Guyliner purchase",
    "customer_first_name": "Jack",
    "customer_id": "user007",
    "customer_last_name": "Sparrow",
    "customer_phone": "02081234567",
    "close_on_missclick": True,
}
E1_SIG = "SyA3cx/dmFrwjRcpbnwEK9zaklWKR9buIfTctQob/EHUTutFLpI0zWpSDFEWEwbZt/04i83395RCdEhtUMw83A=="

E2 = {
    "general": {"project_id": 3254, "payment_id": "id_38202316"},
    "customer": {
        "id": "585741",
        "email": "johndoe@mycompany.com",
        "first_name": "John",
        "last_name": "Doe",
        "address": "Downing str., 23",
        "identify": {"doc_number": "54122312544"},
        "ip_address": "111.222.333.444",
    },
    "payment": {"amount": 10800, "currency": "USD", "description": "Computer keyboards"},
    "receipt_data": {"positions": [{"quantity": 10, "amount": 108, "description": "Computer keyboard"}]},
    "return_url": {
        "success": "https://paymentpage.mycompany.com/complete-redirect?id=success",
        "decline": "https://paymentpage.mycompany.com/complete-redirect?id=decline",
    },
}
E2_SIG = "VLLZzVNGevQNhr1b4TEhbC4qqHD17Kyn/M6FPNN93ttyk/amJgD/R6dayTKVvW6/QCRdq4hOf8R2w/xbUa8f2w=="

E4_JSON = (
    '{"project_id":28051,"payment":{"id":"5242723","type":"purchase","status":"success",'
    '"date":"2023-03-10T12:26:17+0000","method":"card","sum":{"amount":5200,"currency":"EUR"},"description":""},'
    '"account":{"number":"424242******4242",'
    '"token":"c8175453f68ec7c8fb3f052b8d786c661261efebcb91155327a6c7b8f8e66359","type":"visa",'
    '"card_holder":"TEST TEST","expiry_month":"01","expiry_year":"2025"},"customer":{"id":"782572"},'
    '"operation":{"id":5028800010128225,"type":"sale","status":"success","date":"2023-03-10T12:26:17+0000",'
    '"created_date":"2023-03-10T12:26:15+0000",'
    '"request_id":"1f6d3ac37444142f5bd27e7491faa360633fd5a2-fc98e73d475fa4cd6ee02fc6340c964f0267b3d8-05028801",'
    '"sum_initial":{"amount":5200,"currency":"EUR"},"sum_converted":{"amount":5200,"currency":"EUR"},'
    '"provider":{"id":6,"payment_id":"16784511766816","date":"2023-03-10T10:26:17+0000","auth_code":"563253",'
    '"endpoint_id":6},"code":"0","message":"Success"},'
    '"signature":"Y0qjN9dDnPTdddkVvXKS1pGp2z8ZpIl60P1CocND3YRxuBNx05ZMnhUaGFt90fPzgwsI/UpLw0q2RR/XTiDQBg=="}'
)
E4_SIG = "Y0qjN9dDnPTdddkVvXKS1pGp2z8ZpIl60P1CocND3YRxuBNx05ZMnhUaGFt90fPzgwsI/UpLw0q2RR/XTiDQBg=="

O3_JSON = (
    '{"project_id":12345,"payment":{"id":"pay_0001","type":"purchase","status":"success",'
    '"date":"2026-10-02T12:10:05+0000","method":"sbp-qr","sum":{"amount":17900,"currency":"RUB"},'
    '"description":"Подписка 30 дней"},"customer":{"id":"c_9f2a"},"account":{"number":"79*******01"},'
    '"operation":{"id":5028800010128999,"type":"sale","status":"success","date":"2026-10-02T12:10:05+0000",'
    '"created_date":"2026-10-02T12:09:40+0000","request_id":"abc123-def456","sum_initial":{"amount":17900,'
    '"currency":"RUB"},"sum_converted":{"amount":17900,"currency":"RUB"},"provider":{"id":6,'
    '"payment_id":"A1B2C3","auth_code":""},"code":"0","message":"Success"},"errors":[]}'
)
O3_SIG = "ComE3R3Ss///3ghyqlDDYaDMY40QhWNz1gIqvKtwlWRtywP1dnjmvd+lqqobtyh9MHI2azQM5yKDpygH7Pi8xQ=="


def signed(data: dict, secret: str, **kw) -> dict:
    """A copy of ``data`` carrying its root signature, as a callback does."""
    return {**data, "signature": sign(data, secret, **kw)}


# ------------------------------------------------------------------------------------- §2.4 vectors


def test_p1_python_sdk_bool_and_frame_mode() -> None:
    assert signing_string(P1) == "payment:id:test-payment;payment:status:success;some_bool_param:1"
    assert sign(P1, "qwerty") == P1_SIG


def test_p2_python_sdk_multilevel_arrays_and_null() -> None:
    data = loads(P2_JSON)
    assert signing_string(data) == P2_STRING
    assert sign(data, "qwerty") == P2_SIG


def test_p3_php_sdk_card_payload() -> None:
    assert sign(loads(P3_JSON), "secret") == P3_SIG


def test_p4_php_sdk_payment_page_url() -> None:
    sig = sign(P4, "secret")
    assert sig == P4_SIG
    # The URL shape of §5.2: urlencoded params (spaces as '+'), then the urlencoded signature.
    url = "https://paymentpage.ecommpay.com/payment?" + urlencode(P4) + "&" + urlencode({"signature": sig})
    assert url.startswith(P4_URL_PREFIX) and url.endswith("LA%3D%3D")
    params = dict(parse_qsl(urlsplit(url).query))
    assert verify(params, "secret")  # query values are all strings: "100" signs like 100


@pytest.mark.parametrize("body", P5, ids=[f"P5-{i}" for i in range(1, len(P5) + 1)])
def test_p5_php_callback_formats_all_verify(body: str) -> None:
    data = loads(body)
    assert data["general"]["signature"] == extract_signature(data)
    assert verify(data, "123")
    assert sign(data, "123") == extract_signature(data)


def test_g1_go_sdk_two_levels() -> None:
    assert sign(G1, "qwerty") == G1_SIG


def test_g2_go_sdk_signing_string() -> None:
    assert signing_string(loads(G2_JSON)) == G2_STRING


def test_m1_monetix_java_sdk_callback() -> None:
    assert sign(M1, "qwerty") == M1_SIG
    assert verify({**M1, "signature": M1_SIG}, "qwerty")


def test_m2_monetix_java_sdk_payment_page_params() -> None:
    assert sign(M2, "qwerty") == M2_SIG


def test_e1_ecommpay_payment_page_doc_example() -> None:
    assert sign(E1, "secret") == E1_SIG


def test_e2_ecommpay_gate_request_doc_example() -> None:
    assert sign(E2, "secret") == E2_SIG
    body = sign_request(E2, "secret")
    assert body["general"]["signature"] == E2_SIG
    assert "signature" not in E2["general"]  # the input is not modified


def test_e4_ecommpay_callback_doc_example() -> None:
    data = loads(E4_JSON)
    assert extract_signature(data) == E4_SIG
    assert sign(data, "secret") == E4_SIG
    assert verify(data, "secret")


def test_o3_unicode_is_signed_as_utf8_characters() -> None:
    data = loads(O3_JSON)
    assert sign(data, "secret") == O3_SIG
    # The same body with \uXXXX escapes verifies too: escapes are decoded before signing (§2.1).
    escaped = json.dumps(data | {"signature": O3_SIG}, ensure_ascii=True)
    assert "\\u041f" in escaped
    assert verify(loads(escaped), "secret")
    assert verify(loads(escaped.encode("ascii")), "secret")


# ------------------------------------------------------------------------------- §2.2 edge cases


def test_colon_in_key_is_doubled() -> None:
    assert signing_string({"e:f": 1, "a": {"b:c": "x:y"}}) == "a:b::c:x:y;e::f:1"


def test_empty_array_and_empty_object_contribute_nothing() -> None:
    assert signing_string({"a": [], "b": {}, "c": "", "d": {"e": []}}) == "c:"
    assert sign({"x": 1, "body": []}, "k") == sign({"x": 1}, "k")


def test_null_signs_as_empty_value_and_keeps_its_line() -> None:
    assert signing_string({"j": None, "k": ""}) == "j:;k:"


def test_booleans_sign_as_1_and_0() -> None:
    assert signing_string({"t": True, "f": False, "n": [True, False]}) == "f:0;n:0:1;n:1:0;t:1"


def test_frame_mode_is_ignored_at_every_level() -> None:
    data = {"frame_mode": "popup", "a": {"frame_mode": "iframe", "b": 1}, "c": [{"frame_mode": "x", "d": 2}]}
    assert signing_string(data) == "a:b:1;c:0:d:2"


def test_nested_signature_keys_are_removed_at_every_level() -> None:
    data = {"signature": "s0", "general": {"project_id": 1, "signature": "s1"}, "x": [{"signature": "s2", "y": 3}]}
    assert signing_string(data) == "general:project_id:1;x:0:y:3"


def test_numbers_sign_from_their_original_text() -> None:
    as_float = loads('{"amount": 100.0}')
    as_int = loads('{"amount": 100}')
    assert isinstance(as_float["amount"], RawNumber) and as_int["amount"] == 100
    assert signing_string(as_float) == "amount:100.0"
    assert signing_string(as_int) == "amount:100"
    assert sign(as_float, "k") != sign(as_int, "k")
    assert signing_string(loads('{"a": 1.10, "b": 1e5, "c": -0, "d": 12345678901234567890}')) == (
        "a:1.10;b:1e5;c:-0;d:12345678901234567890"
    )
    assert str(as_float["amount"].value) == "100.0"


def test_loads_rejects_nan_which_is_not_json() -> None:
    with pytest.raises(ValueError, match="NaN"):
        loads('{"a": NaN}')


def test_strings_are_signed_verbatim_without_escaping() -> None:
    assert signing_string({"a": "x;y:z", "b": " padded "}) == "a:x;y:z;b: padded "


def test_arrays_of_eleven_items_sort_differently_and_verify_under_both_orders() -> None:
    data = {"e": list(range(11)), "p": "x"}
    byte = signing_string(data)
    natural = signing_string(data, order="natural")
    assert byte.startswith("e:0:0;e:1:1;e:10:10;e:2:2;")
    assert natural.endswith("e:8:8;e:9:9;e:10:10;p:x")
    assert byte != natural
    assert verify(signed(data, "k"), "k")
    assert verify(signed(data, "k", order="natural"), "k")


def test_natural_order_matches_byte_order_for_short_arrays() -> None:
    data = loads(P2_JSON)
    assert signing_string(data, order="natural") == signing_string(data)


def test_unknown_order_is_rejected() -> None:
    with pytest.raises(ValueError, match="order"):
        signing_string({"a": 1}, order="random")  # type: ignore[arg-type]


def test_non_json_values_are_refused_with_their_path() -> None:
    with pytest.raises(TypeError, match="'a:b'"):
        signing_string({"a": {"b": object()}})


# --------------------------------------------------------------------------------------- verify()


def test_tampered_data_fails() -> None:
    data = loads(E4_JSON)
    data["payment"]["sum"]["amount"] = 5300
    assert not verify(data, "secret")


def test_tampered_number_text_fails() -> None:
    # Same value, different text: a verifier that re-renders numbers would wrongly accept this.
    text = E4_JSON.replace('"sum":{"amount":5200,', '"sum":{"amount":5200.0,')
    assert text != E4_JSON
    assert not verify(loads(text), "secret")


def test_wrong_key_fails() -> None:
    assert not verify(loads(E4_JSON), "not-the-secret")


def test_missing_signature_fails() -> None:
    assert not verify(M1, "qwerty")
    assert not verify({**M1, "signature": ""}, "qwerty")
    assert not verify({**M1, "signature": None}, "qwerty")
    assert not verify({**M1, "general": {"signature": 5}}, "qwerty")


def test_root_signature_takes_precedence_over_general() -> None:
    assert extract_signature({"signature": "root", "general": {"signature": "gen"}}) == "root"
    assert extract_signature({"general": {"signature": "gen"}}) == "gen"
    assert extract_signature({"general": "x"}) is None


def test_non_ascii_garbage_signature_is_rejected_not_raised() -> None:
    assert not verify({**M1, "signature": "Подпись"}, "qwerty")


# ---------------------------------------------------------------------------------- sign_request()


def test_sign_request_ignores_a_signature_placeholder_and_verifies() -> None:
    body = {"general": {"project_id": 1234, "payment_id": "bk_0001", "signature": ""}, "payment": {"amount": 50000}}
    out = sign_request(body, "secret")
    assert out["general"]["signature"] == sign({k: v for k, v in body.items()}, "secret")
    assert body["general"]["signature"] == ""  # copy, not mutation
    assert verify(out, "secret")


def test_sign_request_requires_general() -> None:
    with pytest.raises(ValueError, match="general"):
        sign_request({"payment": {}}, "secret")


def test_secret_never_appears_in_errors() -> None:
    secret = "top-secret-key-value"
    with pytest.raises(TypeError) as err:
        sign({"a": object()}, secret)
    assert secret not in str(err.value) and secret not in repr(err.value)
    with pytest.raises(TypeError) as err2:
        sign({"a": 1}, b"bytes-secret")  # type: ignore[arg-type]
    assert "bytes-secret" not in str(err2.value)


def test_pydantic_secret_str_is_accepted() -> None:
    from pydantic import SecretStr

    assert sign(P1, SecretStr("qwerty")) == P1_SIG  # type: ignore[arg-type]


def test_lines_sharing_a_path_sign_the_same_in_any_key_order():
    """Found by the property test: an empty key's list item and a key "0" both have the path "0";
    the whole line breaks the tie, so the signature does not depend on the JSON key order."""
    from providers.monetix_signing import sign

    for order in ("byte", "natural", "line"):
        assert sign({"0": None, "": [False]}, "k", order=order) == \
            sign({"": [False], "0": None}, "k", order=order)
