"""Payload encryption: every payload Temporal stores for us is AES-256-GCM ciphertext.

A Monetix purchase's history would otherwise hold the customer's name, e-mail, IP address and
account number in plain JSON, readable by anyone with access to the namespace, the Web UI or the
CLI. Temporal's guidance: "When working with sensitive data, you should always implement Payload
encryption" (production.md §5, docs.temporal.io data-encryption; the pattern of
temporalio/samples-python ``encryption/``).

* Each payload is encrypted whole (its metadata and data, as the protobuf bytes) with a fresh
  96-bit nonce; the key id travels in the metadata (``encryption-key-id``) and is bound to the
  ciphertext as associated data, so rotating keys needs no rewrite of history: the newest key
  encrypts, every configured older key still decrypts.
* A payload that is not ours (``encoding`` is not ``binary/encrypted``) passes through unchanged:
  histories written before encryption was turned on stay readable.
* Failure messages and stack traces are moved into an encoded attribute too
  (``DefaultFailureConverterWithEncodedAttributes``): they can echo a provider's answer.
* Search attributes, workflow ids and update ids are never encoded by Temporal: they must not
  carry personal data (they don't: invoice numbers, stages, provider ids, amounts).

Keys (never logged, never in a message): ``PAYMENTS_ENCRYPTION_KEYS`` — ``id:base64key`` entries
separated by commas or new lines, the first is the current one — or ``PAYMENTS_ENCRYPTION_KEYS_FILE``
naming a file with the same content (mode 0600). ``PAYMENTS_ENCRYPTION``: ``auto`` (default:
encrypt when a key is configured), ``on`` (a missing key stops the process with a message naming
the settings) or ``off``. The embedded default (`make demo`) makes a key on its first run.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEYS_SETTING = "PAYMENTS_ENCRYPTION_KEYS"
KEYS_FILE_SETTING = "PAYMENTS_ENCRYPTION_KEYS_FILE"
SWITCH_SETTING = "PAYMENTS_ENCRYPTION"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NONCE_BYTES = 12


class EncryptionConfigError(SystemExit):
    """A missing or malformed key setting: the message names the setting, never a key."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration problem:\n  - {message}")
        self.problem = message


class UnknownKeyError(Exception):
    """A payload encrypted with a key this process does not have. Nothing is lost: the workflow
    task (or activity) is retried, and continues once the key is configured."""


@dataclasses.dataclass(frozen=True)
class EncryptionKeys:
    """The current key id, and every key by id (the current one included)."""

    current: str
    keys: Mapping[str, bytes]

    def __repr__(self) -> str:  # never print key material
        return f"EncryptionKeys(current={self.current!r}, ids={sorted(self.keys)!r})"

    @classmethod
    def parse(cls, text: str, setting: str) -> EncryptionKeys:
        entries = [e.strip() for e in re.split(r"[,\n]", text) if e.strip()
                   and not e.strip().startswith("#")]
        if not entries:
            raise EncryptionConfigError(f"{setting} holds no key (expected id:base64key, the first "
                                        "the current one)")
        keys: dict[str, bytes] = {}
        for n, entry in enumerate(entries, 1):
            key_id, sep, material = entry.partition(":")
            if not sep or not _KEY_ID.fullmatch(key_id):
                raise EncryptionConfigError(
                    f"{setting}: entry {n} must be id:base64key with an id of 1-64 letters, digits, "
                    "'_', '-' or '.'")
            try:
                key = base64.b64decode(material.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionConfigError(f"{setting}: key {key_id!r} is not base64") from None
            if len(key) != 32:
                raise EncryptionConfigError(f"{setting}: key {key_id!r} must be 32 bytes "
                                            f"(AES-256), got {len(key)}")
            if key_id in keys:
                raise EncryptionConfigError(f"{setting}: key id {key_id!r} appears twice")
            keys[key_id] = key
        return cls(current=next(iter(keys)), keys=keys)


def new_key_line(key_id: str | None = None) -> str:
    """A fresh ``id:base64key`` line (the demo's first-run key; `python -m merchant_client.encryption`)."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def load_keys(env: Mapping[str, str] | None = None) -> EncryptionKeys | None:
    """The configured keys, or None for plain payloads.

    ``PAYMENTS_ENCRYPTION``: ``auto`` (the default: encrypt when a key is configured), ``on`` (a key
    is required: none stops the process naming the settings) or ``off``."""
    env = os.environ if env is None else env
    switch = (env.get(SWITCH_SETTING) or "auto").lower()
    if switch not in ("auto", "on", "off"):
        raise EncryptionConfigError(f"{SWITCH_SETTING} must be auto (the default: on when a key "
                                    "is set), on (a key is required) or off")
    if switch == "off":
        return None
    if env.get(KEYS_SETTING):
        return EncryptionKeys.parse(env[KEYS_SETTING], KEYS_SETTING)
    if env.get(KEYS_FILE_SETTING):
        path = Path(env[KEYS_FILE_SETTING])
        try:
            text = path.read_text()
        except OSError as exc:
            raise EncryptionConfigError(f"{KEYS_FILE_SETTING}: cannot read {path} "
                                        f"({type(exc).__name__})") from None
        return EncryptionKeys.parse(text, KEYS_FILE_SETTING)
    if switch == "auto":
        return None
    raise EncryptionConfigError(
        f"no payload encryption key ({SWITCH_SETTING}=on): set {KEYS_FILE_SETTING} to a file of "
        f"id:base64key lines (make one with: python -m merchant_client.encryption > keys; chmod "
        f"600 keys) or {KEYS_SETTING}")


def plaintext_warning(env: Mapping[str, str] | None = None) -> str | None:
    """What a worker started without a key must tell its operator (README "Customer data"): under
    the default ``auto`` it writes every payload in plain text, silently otherwise. None when it
    encrypts (or a setting is wrong: :func:`load_keys` then stops the process)."""
    env = os.environ if env is None else env
    switch = (env.get(SWITCH_SETTING) or "auto").lower()
    if switch == "on" or env.get(KEYS_SETTING) or env.get(KEYS_FILE_SETTING):
        return None
    why = (f"{SWITCH_SETTING}=off" if switch == "off" else
           f"no {KEYS_FILE_SETTING} or {KEYS_SETTING} ({SWITCH_SETTING}=auto, the default)")
    return (f"payload encryption is OFF: {why}, so this worker writes customers' names, e-mails, "
            "IP addresses and account numbers to Temporal's histories in plain text. In "
            f"production set {SWITCH_SETTING}=on and {KEYS_FILE_SETTING} (a process without the "
            "key then refuses to start)")


def payments_data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The data converter of every client and worker the project builds (worker, merchant client,
    CLI, endpoint, codec-aware tools, demo, bench, chaos, tests, replayer): one function, so none
    can forget the encryption."""
    return data_converter(load_keys(env))


class AesGcmCodec(PayloadCodec):
    """AES-256-GCM over each whole payload, the key id in the metadata (see the module text)."""

    def __init__(self, keys: EncryptionKeys) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._keys = keys
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.keys.items()}
        # Every payload of every workflow task and activity passes here (tens per payment): what
        # does not change per payload is worked out once, not per call.
        self._invalid_tag = InvalidTag
        self._current = keys.current.encode()
        self._current_cipher = self._ciphers[keys.current]
        self._by_id = {key_id.encode(): cipher for key_id, cipher in self._ciphers.items()}

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current
        # A fresh random nonce per payload (os.urandom, what secrets.token_bytes calls).
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._current_cipher.encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id},
                       data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        metadata = payload.metadata
        if metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was on, or not ours
        raw_id = metadata.get(KEY_ID_METADATA, b"")
        cipher = self._by_id.get(raw_id)
        key_id = raw_id.decode(errors="replace")
        if cipher is None:
            raise UnknownKeyError(
                f"payload encrypted with key id {key_id!r}, which is not configured (known: "
                f"{', '.join(self.key_ids)}); add it to {KEYS_SETTING} / {KEYS_FILE_SETTING}")
        data = payload.data
        try:
            plain = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], raw_id)
        except self._invalid_tag:
            raise UnknownKeyError(f"payload with key id {key_id!r} does not decrypt with the "
                                  "configured key of that id (a different key under the same "
                                  "id?), or it was altered") from None
        return Payload.FromString(plain)


class NoKeyCodec(PayloadCodec):
    """Without a key: payloads go out plain; an encrypted one coming in is a clear error naming
    the settings (not the SDK's "Unknown payload encoding")."""

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        for p in payloads:
            if p.metadata.get("encoding") == ENCODING:
                key_id = p.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
                raise UnknownKeyError(
                    f"the payments' payloads are encrypted (key id {key_id!r}) and this process "
                    f"has no key: set {KEYS_FILE_SETTING} (or {KEYS_SETTING}) to the payments' "
                    "keys")
        return list(payloads)


class PaymentsFailureConverter(DefaultFailureConverterWithEncodedAttributes):
    """Failures' messages and stack traces encoded, except an :class:`UnknownKeyError`'s message:
    it names key ids only (never key material, never customer data), and whoever looks at the stuck
    workflow (Web UI, CLI) must read which key is missing without having that key."""

    def to_failure(self, exception: BaseException, payload_converter, failure) -> None:
        super().to_failure(exception, payload_converter, failure)
        err: BaseException | None = exception
        while err is not None and not isinstance(err, UnknownKeyError):
            err = err.__cause__ or err.__context__
        if err is not None:
            failure.message = str(err)


def data_converter(keys: EncryptionKeys | None) -> DataConverter:
    """The one data converter of every client and worker: pydantic JSON, encrypted when ``keys``
    are given, failures' messages and stack traces encoded too."""
    if keys is None:
        return dataclasses.replace(pydantic_data_converter, payload_codec=NoKeyCodec())
    return dataclasses.replace(pydantic_data_converter, payload_codec=AesGcmCodec(keys),
                               failure_converter_class=PaymentsFailureConverter)


if __name__ == "__main__":
    print(new_key_line())
