"""merchant_client/encryption.py alone: AES-256-GCM payloads with the key id in their metadata,
rotation, plain payloads passing through, unknown keys named, settings named in errors."""

from __future__ import annotations

import base64

import pytest
from temporalio.api.common.v1 import Payload

from merchant_client.encryption import (
    ENCODING,
    KEY_ID_METADATA,
    AesGcmCodec,
    EncryptionConfigError,
    EncryptionKeys,
    UnknownKeyError,
    data_converter,
    load_keys,
    new_key_line,
)

OLD, NEW = new_key_line("k2026a"), new_key_line("k2026b")


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=text.encode())


async def test_a_payload_is_ciphertext_with_the_current_key_id_and_decodes_back():
    codec = AesGcmCodec(EncryptionKeys.parse(NEW, "X"))
    secret = '{"first_name":"Rahim","email":"rahim@example.com","account":"01712345678"}'
    [sealed] = await codec.encode([plain(secret)])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID_METADATA] == b"k2026b"
    blob = sealed.SerializeToString()
    for text in ("Rahim", "rahim@example.com", "01712345678", "json/plain"):
        assert text.encode() not in blob
    [back] = await codec.decode([sealed])
    assert back == plain(secret)
    [again] = await codec.encode([plain(secret)])
    assert again.data != sealed.data  # a fresh nonce every time


async def test_rotation_the_new_key_encrypts_and_the_old_still_decrypts():
    before = AesGcmCodec(EncryptionKeys.parse(OLD, "X"))
    after = AesGcmCodec(EncryptionKeys.parse(f"{NEW}\n{OLD}", "X"))
    [old_sealed] = await before.encode([plain("old")])
    [new_sealed] = await after.encode([plain("new")])
    assert new_sealed.metadata[KEY_ID_METADATA] == b"k2026b"
    assert [p.data for p in await after.decode([old_sealed, new_sealed])] == [b"old", b"new"]
    with pytest.raises(UnknownKeyError, match="k2026b"):
        await before.decode([new_sealed])


async def test_plain_payloads_written_before_encryption_stay_readable():
    codec = AesGcmCodec(EncryptionKeys.parse(NEW, "X"))
    assert await codec.decode([plain("from 2025")]) == [plain("from 2025")]


async def test_an_altered_ciphertext_or_a_key_swapped_under_the_same_id_is_refused():
    codec = AesGcmCodec(EncryptionKeys.parse(NEW, "X"))
    [sealed] = await codec.encode([plain("x")])
    tampered = Payload(metadata=dict(sealed.metadata), data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1]))
    with pytest.raises(UnknownKeyError, match="altered"):
        await codec.decode([tampered])
    other = AesGcmCodec(EncryptionKeys.parse(new_key_line("k2026b"), "X"))
    with pytest.raises(UnknownKeyError):
        await other.decode([sealed])


@pytest.mark.parametrize("env, says", [
    ({"PAYMENTS_ENCRYPTION": "on"}, "no payload encryption key (PAYMENTS_ENCRYPTION=on): set "
                                    "PAYMENTS_ENCRYPTION_KEYS_FILE"),
    ({"PAYMENTS_ENCRYPTION": "maybe"}, "PAYMENTS_ENCRYPTION must be auto (the default"),
    ({"PAYMENTS_ENCRYPTION_KEYS": "nocolon"}, "PAYMENTS_ENCRYPTION_KEYS: entry 1 must be id:base64key"),
    ({"PAYMENTS_ENCRYPTION_KEYS": "k1:not base64!"}, "key 'k1' is not base64"),
    ({"PAYMENTS_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"short").decode()}, "must be 32 bytes"),
    ({"PAYMENTS_ENCRYPTION_KEYS": f"{NEW},{NEW}"}, "appears twice"),
    ({"PAYMENTS_ENCRYPTION_KEYS_FILE": "/nonexistent/keys"}, "PAYMENTS_ENCRYPTION_KEYS_FILE: cannot read"),
])
def test_key_settings_are_validated_with_the_setting_named_and_no_key_echoed(env, says):
    with pytest.raises(EncryptionConfigError) as info:
        load_keys(env)
    assert says in str(info.value)
    key_material = NEW.split(":", 1)[1]
    assert key_material not in str(info.value)


def test_keys_come_from_a_file_and_never_print(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"# current first\n{NEW}\n{OLD}\n")
    keys = load_keys({"PAYMENTS_ENCRYPTION_KEYS_FILE": str(path)})
    assert keys is not None and keys.current == "k2026b" and set(keys.keys) == {"k2026a", "k2026b"}
    assert NEW.split(":", 1)[1] not in repr(keys) and NEW.split(":", 1)[1] not in str(keys)
    assert load_keys({"PAYMENTS_ENCRYPTION": "off", "PAYMENTS_ENCRYPTION_KEYS_FILE": str(path)}) is None
    assert load_keys({}) is None  # auto, and no key: plain payloads


async def test_the_data_converter_encodes_failures_too():
    from temporalio.api.failure.v1 import Failure
    from temporalio.exceptions import ApplicationError

    converter = data_converter(EncryptionKeys.parse(NEW, "X"))
    failure = Failure()
    await converter.encode_failure(ApplicationError("account 01712345678 refused"), failure)
    assert b"01712345678" not in failure.SerializeToString()
    back = await converter.decode_failure(failure)
    assert "01712345678" in str(back)
