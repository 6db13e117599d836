"""Hypothesis strategies shared by the hostile-input tests: JSON-like data as Monetix signs it, and
the junk a hostile client sends instead."""

from __future__ import annotations

import json

from hypothesis import strategies as st

# Keys as a hostile or simply unusual sender writes them: unicode, colons (doubled by the signer,
# §2.2), semicolons, digits (array-like), empty. `signature` and `frame_mode` are left out of the
# signature by design (§2.1), so they are not generated as keys whose change must be detected.
keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8).filter(
    lambda k: k not in ("signature", "frame_mode")) | st.sampled_from(
        ["a:b", ":", "::", "a;b", "0", "10", "id", "ক্রেতা", "🙂", "payment"])

big_ints = st.integers(min_value=-(10**40), max_value=10**40)
leaves = (st.none() | st.booleans() | big_ints | st.text(max_size=20)
          | st.floats(allow_nan=False, allow_infinity=False))


def json_like(max_leaves: int = 15):
    """Nested objects and arrays (arrays up to 12 items, so the byte/natural orders of §2.3 differ)."""
    return st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=12) | st.dictionaries(keys, children, max_size=6),
        max_leaves=max_leaves)


def json_objects(max_leaves: int = 15):
    return st.dictionaries(keys, json_like(max_leaves), max_size=6)


# Text that must not reach a signer or a workflow: lone surrogates (as \udXXX escapes), NUL and other
# controls, right-to-left marks, very long runs.
nasty_text = st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Lo", "Nd", "Po"]), max_size=30)
huge_text = st.integers(min_value=1_000, max_value=20_000).map(lambda n: "x" * n)


def _corrupt(text: str, cut: int) -> str:
    return text[: cut % (len(text) + 1)]


json_bodies = json_objects(12).map(json.dumps)
# Bytes a hostile client POSTs instead of JSON: truncated JSON, deep nesting, invalid UTF-8, JSON
# constants Python accepts but JSON does not, escaped lone surrogates, scalars and arrays.
hostile_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(_corrupt, json_bodies, st.integers(0, 10_000)).map(str.encode),
    st.integers(min_value=1, max_value=6_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=6_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.sampled_from([b"NaN", b"Infinity", b'{"a": -Infinity}', b"1e999999", b"-0", b"null",
                     b'"\\ud800"', b'{"\\udfff": 1}', b"\xff\xfe", b"\x00", b"", b"[]", b"{}",
                     b"9" * 5000, b'{"a": 1, "a": 2}']),
    json_objects(12).map(lambda o: json.dumps(o, ensure_ascii=False).encode("utf-8")),
    st.dictionaries(nasty_text, nasty_text, max_size=4).map(lambda o: json.dumps(o).encode()),
)
