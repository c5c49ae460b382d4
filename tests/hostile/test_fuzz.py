"""Fuzz targets of the event core: strict JSON, keys and signatures, credential tokens, admission.

Each target's property is the same in spirit: hostile input is either understood exactly as a
reference understands it, or refused with an error from ``stave.errors`` — never another
exception, never a different reading. Brief and deterministic in ``make test``; long and random
under ``make drill`` (``STAVE_FUZZ=drill``, see ``tests/hostile/fuzzing.py``).

- strict JSON: the fast path (orjson + proofs) and the slow path (stdlib ``json`` + hooks) accept
  the same inputs with the same values, and both agree with an independent reference of the
  rules (stdlib ``json`` with its own hooks); accepted values canonicalise exactly as the
  ``rfc8785`` package does, whichever path parsed them; the C accelerators (the tree walk, the
  Base58 decoder) agree with their Python fallbacks.
- keys and signatures: random mutations of valid ``PUB_K1_``, ``EOS…``, ``PVT_K1_``, WIF and
  ``SIG_K1_`` strings parse to the very same key or signature or are refused.
- credential tokens: mutations of a valid token are refused or read as the same claims.
- events: mutations of every example in ``examples/`` (bytes, values, layout) are admitted as the
  same event (same id) or refused with a ``VerificationError``.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, note
from hypothesis import strategies as st

from stave.auth import CredentialVerifier, Issuer, Kind, MemoryRevocationStore
from stave.auth.credentials import read_token_unverified
from stave.errors import JSONError, StaveError, VerificationError
from stave.event import Event, PrivateKey, PublicKey, Signature, admit, strictjson, validate_event
from stave.event import base58 as base58_module
from stave.event.keys import CURVE_ORDER
from stave.event.strictjson import DEFAULT_LIMITS
from tests.hostile.fuzzing import DRILL, fuzz
from tests.hostile.reference import reference_loads, same

# Under STAVE_FUZZ=drill these are drills (make drill selects them); otherwise brief, in make test.
pytestmark = [pytest.mark.drill] if DRILL else []

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("[0-9]*.json"))

# --- inputs ------------------------------------------------------------------------------------------

#: Fragments that sit on the rules' edges: duplicates, big and odd numbers, escapes, bad UTF-8.
PIECES = [
    b"{", b"}", b"[", b"]", b":", b",", b" ", b"\n", b"\t", b"\r", b"\x00", b"\xef\xbb\xbf",
    b'"a"', b'"b"', b'"\\u0061"', b'"\\u003a"', b'"\\ud800"', b'"\\udc00"', b'"\\ud83d\\ude00"', b'"\\"',
    b'"\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf0\x9f\x98\x80"', b'"\xf4\x90\x80\x80"', b'"\x1f"',
    b"0", b"-0", b"1", b"00", b"01", b"-", b"1.", b".5", b"1.0", b"1e5", b"1E+2", b"1e-7", b"0.1", b"1e16",
    b"9007199254740991", b"9007199254740992", b"-9007199254740993", b"18446744073709551616", b"1e400",
    b"123456789012345678901234567890", b"5e-324", b"1.7976931348623157e308", b"NaN", b"Infinity",
    b"true", b"false", b"null", b"tru", b"nul",
]  # fmt: skip

token_soup = st.lists(st.sampled_from(PIECES), min_size=1, max_size=24).map(b"".join)

json_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60) | st.floats() | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


def _dump(value: Any, ascii_only: bool, indent: int | None) -> bytes:
    # surrogatepass: lone surrogates in generated text become the UTF-8-encoded surrogates a hostile client sends
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent, allow_nan=True).encode("utf-8", "surrogatepass")


serialised = st.builds(_dump, json_values, st.booleans(), st.sampled_from([None, 0, 2]))


@st.composite
def mutated_bytes(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with a few byte-level edits: flips, inserted fragments, deletions, duplications, cuts."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["byte", "piece", "delete", "repeat", "cut"]))
        if edit == "byte" and data:
            data[min(where, len(data) - 1)] = draw(st.integers(0, 255))
        elif edit == "piece":
            data[where:where] = draw(st.sampled_from(PIECES))
        elif edit == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        elif edit == "repeat":
            data[where:where] = data[where : where + draw(st.integers(1, 16))]
        elif edit == "cut":
            del data[where:]
    return bytes(data)


json_inputs = st.one_of(st.binary(max_size=120), token_soup, serialised, mutated_bytes(serialised))


# --- strict JSON -------------------------------------------------------------------------------------


def _outcome(parse: Any) -> tuple[bool, Any, bool]:
    try:
        parsed = parse()
    except JSONError as exc:
        assert exc.path.startswith("$"), exc
        return False, None, False
    return True, parsed.value, parsed.sorted_is_canonical


@fuzz(ci_examples=600)
@given(json_inputs)
def test_strict_json_paths_and_reference_agree(data: bytes) -> None:
    fast = _outcome(lambda: strictjson.parse(data))
    slow = _outcome(lambda: strictjson._parse_slow(data, DEFAULT_LIMITS, None))
    accepted, value = reference_loads(data)
    note(f"fast={fast} slow={slow} reference={(accepted, value)}")
    assert fast[0] == slow[0] == accepted
    if accepted:
        assert same(fast[1], value)
        assert same(slow[1], value)
        expected = rfc8785.dumps(value)
        # Each path's flag must be safe: True only where orjson's sorted output is the RFC 8785 form.
        for flag in (fast[2], slow[2]):
            assert strictjson.canonicalize(value, sorted_is_canonical=flag) == expected


@fuzz(ci_examples=300)
@given(st.text(max_size=40) | serialised.map(lambda data: data.decode("utf-8", "surrogatepass")))
def test_strict_json_from_text_never_crashes(text: str) -> None:
    """Text (which may hold lone surrogates) parses like its UTF-8 bytes, or is refused."""
    try:
        value = strictjson.loads(text)
    except JSONError:
        return
    assert same(value, strictjson.loads(text.encode("utf-8")))


def _chain(depth: int, leaf: Any, objects: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if objects else [value]
    return value


#: Any Python JSON value (NaN and big integers included: the walk must judge them too), and deep chains.
walked_values = json_values | st.builds(_chain, st.integers(1, 80), json_scalars, st.booleans())


@fuzz(ci_examples=300)
@given(walked_values, st.integers(1, 70))
def test_c_tree_walk_agrees_with_python(value: Any, max_depth: int) -> None:
    assert strictjson._check_tree is not None, "the C accelerator was not built"
    python_ok = strictjson._containers_ok_python(value, max_depth)
    assert (strictjson._check_tree(value, max_depth) == 0) == python_ok


@fuzz(ci_examples=400)
@given(st.text(alphabet=st.sampled_from(base58_module.ALPHABET) | st.characters(), max_size=60))
def test_c_base58_agrees_with_python(text: str) -> None:
    assert base58_module._b58decode_c is not None, "the C accelerator was not built"
    try:
        expected: bytes | None = base58_module._b58decode_python(text)
    except ValueError:
        expected = None
    try:
        got: bytes | None = base58_module._b58decode_c(text)
    except ValueError:
        got = None
    assert got == expected


# --- keys and signatures -----------------------------------------------------------------------------

FORMS = ["PUB_K1", "EOS", "PVT_K1", "WIF", "SIG_K1"]
_EDIT_CHARACTERS = st.sampled_from(base58_module.ALPHABET + "0OIl_+/= \n\t") | st.characters()


@functools.lru_cache(maxsize=256)
def _key_forms(secret: bytes) -> dict[str, tuple[str, bytes]]:
    """Every string form of one key (and a signature by it), each with the bytes it stands for."""
    key = PrivateKey(secret)
    signature = key.sign_digest(hashlib.sha256(secret).digest())
    public = key.public_key
    return {
        "PUB_K1": (public.to_string(), public.data),
        "EOS": (public.to_legacy_string(), public.data),
        "PVT_K1": (key.to_string(), key.secret),
        "WIF": (key.to_wif(), key.secret),
        "SIG_K1": (signature.to_string(), signature.data),
    }


def _parse_form(form: str, text: str) -> bytes:
    if form in ("PUB_K1", "EOS"):
        return PublicKey.from_string(text).data
    if form in ("PVT_K1", "WIF"):
        return PrivateKey.from_string(text).secret
    return Signature.from_string(text).data


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, max(0, len(chars) - 1)))
        edit = draw(st.sampled_from(["replace", "insert", "delete", "swap", "case", "cut", "prefix", "pad"]))
        if edit == "replace" and chars:
            chars[where] = draw(_EDIT_CHARACTERS)
        elif edit == "insert":
            chars.insert(where, draw(_EDIT_CHARACTERS))
        elif edit == "delete" and chars:
            del chars[where]
        elif edit == "swap" and where + 1 < len(chars):
            chars[where], chars[where + 1] = chars[where + 1], chars[where]
        elif edit == "case" and chars:
            chars[where] = chars[where].swapcase()
        elif edit == "cut":
            del chars[where:]
        elif edit == "prefix":
            chars[:0] = list(draw(st.sampled_from(["PUB_K1_", "PUB_R1_", "EOS", "PVT_K1_", "SIG_K1_", "SIG_WA_", "5"])))
        elif edit == "pad":
            chars.append(draw(st.sampled_from([" ", "\n", "\x00", "\u00a0"])))
    return "".join(chars)


@st.composite
def key_cases(draw: st.DrawFn) -> tuple[str, str, bytes, str]:
    secret = draw(st.binary(min_size=32, max_size=32).filter(lambda s: 0 < int.from_bytes(s, "big") < CURVE_ORDER))
    form = draw(st.sampled_from(FORMS))
    text, value = _key_forms(secret)[form]
    return form, text, value, draw(mutated_text(text))


@fuzz(ci_examples=500)
@given(key_cases())
def test_mutated_keys_and_signatures_parse_the_same_or_are_refused(case: tuple[str, str, bytes, str]) -> None:
    form, text, value, mutated = case
    note(f"{form}: {text!r} -> {mutated!r}")
    assert _parse_form(form, text) == value
    try:
        got = _parse_form(form, mutated)
    except StaveError:
        return
    # Only spellings of the same value may pass: surrounding whitespace of a private key, or no change.
    assert got == value


# --- credential tokens -------------------------------------------------------------------------------

_ISSUER = Issuer(hashlib.sha256(b"stave fuzz issuer").digest())
_TOKEN = _ISSUER.issue(Kind.APP, hashlib.sha256(b"stave fuzz holder").digest(), 1_800_000_000, scope=["events:write"])


@fuzz(ci_examples=400)
@given(mutated_text(_TOKEN.token))
def test_mutated_credential_tokens_are_refused_or_thesame(token: str) -> None:
    verifier = CredentialVerifier([_ISSUER.public_key], MemoryRevocationStore())
    try:
        claims = read_token_unverified(token).claims()
    except StaveError:
        claims = None
    try:
        verified = verifier.verify_token(token, 1_800_000_100, kinds=["app", "relay", "admin"])
    except StaveError:
        return
    assert token == _TOKEN.token, "one spelling per token: any other must be refused"
    assert verified.claims() == claims == _TOKEN.claims()


# --- events ------------------------------------------------------------------------------------------


@functools.cache
def _example(index: int) -> tuple[bytes, Event]:
    data = EXAMPLES[index].read_bytes()
    return data, admit(data)


@st.composite
def _path_into(draw: st.DrawFn, value: Any) -> list[str | int]:
    """A random path to a node of ``value`` (stopping early now and then)."""
    path: list[str | int] = []
    node = value
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 4)) > 0:
        keys: list[str | int] = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        step = draw(st.sampled_from(keys))
        path.append(step)
        node = node[step]  # type: ignore[index]
    return path


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[str, Event, bytes]:
    data, original = _example(draw(st.integers(0, len(EXAMPLES) - 1)))
    how = draw(st.sampled_from(["layout", "bytes", "value", "value", "duplicate"]))
    value = json.loads(data)
    if how == "layout":  # the same event written differently: must be admitted as itself
        return how, original, _dump(value, draw(st.booleans()), draw(st.sampled_from([None, 0, 1, 4])))
    if how == "bytes":
        return how, original, draw(mutated_bytes(st.just(original.canonical_bytes())))
    if how == "duplicate":  # a member again, with another value, spliced into the top level or below
        key = draw(st.sampled_from(sorted(value)))
        spliced = json.dumps({key: draw(json_values)}, allow_nan=True).encode("utf-8", "surrogatepass")
        return how, original, spliced[:-1] + b"," + original.canonical_bytes()[1:]
    path = draw(_path_into(value))
    edit = draw(st.sampled_from(["replace", "delete", "add"]))
    if not path:
        edit = "add"
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    if edit == "replace":
        parent[path[-1]] = draw(json_values)
    elif edit == "delete":
        del parent[path[-1]]
    else:
        target = value if not path else parent[path[-1]]
        if isinstance(target, dict):
            target[draw(st.text(max_size=6))] = draw(json_values)
        elif isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(json_values))
        else:
            value["x"] = draw(json_values)
    return f"{how}:{edit}:{path}", original, _dump(value, draw(st.booleans()), None)


@fuzz(ci_examples=150)
@given(mutated_events())
def test_mutated_events_are_the_same_event_or_refused(case: tuple[str, Event, bytes]) -> None:
    how, original, data = case
    note(how)
    try:
        admitted = admit(data)
    except VerificationError:
        assert how != "layout", "the same event in another layout must be admitted"
        return
    assert admitted.id == original.id, f"{how}: a different event passed admission"
    assert admitted.canonical_bytes() == original.canonical_bytes()


@fuzz(ci_examples=300)
@given(json_values)
def test_schema_validation_of_any_json_value_refuses_cleanly(value: Any) -> None:
    try:
        validate_event(value)
    except VerificationError:
        return
    raise AssertionError("no random value is a valid event")  # pragma: no cover


def test_the_targets_reach_both_answers() -> None:
    """The generators are not degenerate: fixed samples of each are accepted and refused."""
    valid = _example(1)[0]
    assert reference_loads(valid)[0]
    assert not reference_loads(b'{"a":1,"a":2}')[0]
    assert admit(_dump(json.loads(valid), False, 2)).id == _example(1)[1].id
    text, value = _key_forms(b"\x01" * 32)["WIF"]
    assert _parse_form("WIF", f" {text}\n") == value
    assert base64.urlsafe_b64decode(_TOKEN.token.split(".")[1] + "==")
