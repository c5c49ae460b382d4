"""Strict JSON: every rejection names the path and the rule; canonical output is RFC 8785."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from stave.errors import CanonicalizationError, JSONError
from stave.event import JsonLimits, canonicalize, loads, parse

RFC_VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc8785"


@pytest.mark.parametrize(
    ("data", "path", "rule"),
    [
        (b'{"a":1,"a":2}', "$.a", "duplicate-key"),
        (b'{"x":{"y":[1,{"k":1,"k":1}]}}', "$.x.y[1].k", "duplicate-key"),
        (b'{"x":[1,{"b":NaN}]}', "$.x[1].b", "non-finite"),
        (b'{"x":Infinity}', "$.x", "non-finite"),
        (b"[-Infinity]", "$[0]", "non-finite"),
        (b'{"x":1e400}', "$.x", "non-finite"),
        (b'{"x":9007199254740992}', "$.x", "integer-range"),
        (b'{"x":-9007199254740992}', "$.x", "integer-range"),
        (b'{"x":[18446744073709551616]}', "$.x[0]", "integer-range"),
        (b'{"x":"\\ud800"}', "$.x", "lone-surrogate"),
        (b'{"\\udfff":1}', '$["\\udfff"]', "lone-surrogate"),
        (b'{"x":"ok","y":"\xff"}', "$.y", "utf-8"),
        (b'{"x":"\xed\xa0\x80"}', "$.x", "utf-8"),
        (b"[1] 2", "$", "trailing-data"),
        (b'{"a":1}{"b":2}', "$", "trailing-data"),
        (b'{"a": [1, 2,, 3]}', "$.a[2]", "syntax"),
        (b'{"a": {"b": tru}}', "$.a.b", "syntax"),
        (b'{"a":1,}', "$", "syntax"),
        (b"\xef\xbb\xbf{}", "$", "bom"),
        (b'{"a":"\x01"}', "$.a", "syntax"),
        (b"", "$", "syntax"),
    ],
)
def test_rejections_name_path_and_rule(data: bytes, path: str, rule: str) -> None:
    with pytest.raises(JSONError) as info:
        loads(data)
    assert (info.value.path, info.value.rule) == (path, rule), str(info.value)
    assert path in str(info.value)


def test_integer_bounds_are_inclusive() -> None:
    assert loads(b"[9007199254740991,-9007199254740991]") == [2**53 - 1, -(2**53 - 1)]


def test_size_limit() -> None:
    limits = JsonLimits(max_bytes=10)
    assert loads(b'"12345678"', limits) == "12345678"
    with pytest.raises(JSONError, match="11 bytes, the limit is 10") as info:
        loads(b'"123456789"', limits)
    assert info.value.rule == "max-size"


@pytest.mark.parametrize("depth", [3, 64])
def test_depth_limit(depth: int) -> None:
    limits = JsonLimits(max_depth=depth)
    assert loads(b"[" * depth + b"]" * depth, limits) == _nested(depth)
    with pytest.raises(JSONError) as info:
        loads(b"[" * (depth + 1) + b"]" * (depth + 1), limits)
    assert info.value.rule == "max-depth"


def test_very_deep_input_is_refused_without_crashing() -> None:
    with pytest.raises(JSONError) as info:
        loads(b"[" * 100_000 + b"]" * 100_000, JsonLimits(max_bytes=1 << 20))
    assert info.value.rule == "max-depth"


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_escaped_colons_do_not_hide_duplicates() -> None:
    # The fast path counts ':' to prove no key was dropped; escapes must not fool it.
    with pytest.raises(JSONError) as info:
        loads(b'{"a":1,"a":2,"b":"\\u003a"}')
    assert info.value.rule == "duplicate-key"
    assert loads(b'{"a":"\\u003a"}') == {"a": ":"}


# --- RFC 8785 ------------------------------------------------------------------------------

RFC_CASES = sorted(path.stem for path in (RFC_VECTORS / "input").glob("*.json"))


@pytest.mark.parametrize("name", RFC_CASES)
def test_rfc8785_reference_vectors(name: str) -> None:
    source = (RFC_VECTORS / "input" / f"{name}.json").read_bytes()
    expected = (RFC_VECTORS / "output" / f"{name}.json").read_bytes()
    parsed = parse(source)
    assert canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical) == expected
    assert canonicalize(json.loads(source)) == expected


def test_rfc8785_vector_set_is_complete() -> None:
    assert RFC_CASES == ["arrays", "french", "structures", "unicode", "values", "weird"]


def _number_rows() -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = json.loads((RFC_VECTORS / "numbers.json").read_text())
    return rows


@pytest.mark.parametrize("row", _number_rows(), ids=lambda row: str(row["ieee_hex"]))
def test_rfc8785_number_serialisation(row: dict[str, str | None]) -> None:
    assert row["ieee_hex"] is not None
    value = struct.unpack(">d", bytes.fromhex(row["ieee_hex"]))[0]
    if row["expected"] is None:
        with pytest.raises(CanonicalizationError):
            canonicalize(value)
    elif not _storable(value):
        # stave refuses integral numbers whose canonical text is an integer beyond ±(2^53−1),
        # because its strict parser refuses such literals; the reference formats them as the RFC says.
        assert rfc8785.dumps(value) == row["expected"].encode()
        with pytest.raises(CanonicalizationError, match="outside"):
            canonicalize(value)
    else:
        assert canonicalize(value) == row["expected"].encode()
        assert canonicalize([value]) == b"[" + row["expected"].encode() + b"]"


def test_utf16_key_order() -> None:
    # RFC 8785 §3.2.3: keys sort by UTF-16 code units, so U+1F600 (D83D DE00) sorts before U+E000.
    value = {"\ue000": 1, "\U0001f600": 2, "a": 0}
    expected = '{"a":0,"\U0001f600":2,"\ue000":1}'.encode()
    assert canonicalize(value) == expected
    parsed = parse(json.dumps(value, ensure_ascii=False).encode())
    assert not parsed.sorted_is_canonical
    assert canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical) == expected


def test_canonicalize_rejects_what_json_cannot_hold() -> None:
    for bad in [math.nan, math.inf, {1: 2}, {"a": object()}, "\ud800", 2**53]:
        with pytest.raises(CanonicalizationError):
            canonicalize(bad)


# --- properties ------------------------------------------------------------------------------


def _storable(number: float) -> bool:
    """Integral doubles in [2^53, 1e21) are refused: RFC 8785 prints them as big integers."""
    return not (number.is_integer() and 2**53 - 1 < abs(number) < 1e21)


json_floats = st.floats(allow_nan=False, allow_infinity=False).filter(_storable)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
    | json_floats
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_canonical_equals_reference_library(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([None, 1, 2]))
def test_parse_of_any_serialisation_canonicalises_like_the_reference(value: object, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=indent == 2, indent=indent).encode()
    parsed = parse(text)
    assert canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical) == rfc8785.dumps(value)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_canonicalise_is_idempotent_and_round_trips(value: object) -> None:
    once = canonicalize(value)
    parsed = parse(once)
    assert canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical) == once
    assert parsed.value == json.loads(once)


@pytest.mark.parametrize("literal", [b"1e16", b"9007199254740992.0", b"-1.5e20", b"123456789012345680000"])
def test_integral_numbers_beyond_2_53_are_refused_in_any_spelling(literal: bytes) -> None:
    with pytest.raises(JSONError) as info:
        loads(b"[" + literal + b"]")
    assert (info.value.path, info.value.rule) == ("$[0]", "integer-range")
    with pytest.raises(CanonicalizationError):
        canonicalize(float(literal))


def test_integral_numbers_from_1e21_print_as_exponents_and_are_accepted() -> None:
    assert canonicalize(loads(b"[1e21, 1.0, -0.0]")) == b"[1e+21,1,0]"


@settings(max_examples=300, deadline=None)
@given(json_floats)
def test_every_float_canonicalises_like_the_reference(number: float) -> None:
    assert canonicalize(number) == rfc8785.dumps(number)
    parsed = parse(repr(number).replace("inf", "1e999").encode())
    assert canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical) == rfc8785.dumps(number)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        value = loads(data)
    except JSONError as exc:
        assert exc.path.startswith("$")
    else:
        assert json.loads(data) == value


def test_c_walk_is_built() -> None:
    from stave.event import strictjson

    assert strictjson._check_tree is not None, "the C accelerator was not built (is a C compiler installed?)"


@settings(max_examples=400, deadline=None)
@given(json_values, st.integers(1, 8))
def test_c_walk_matches_python_walk(value: object, max_depth: int) -> None:
    from stave.event import strictjson

    assert strictjson._check_tree is not None
    python_ok = strictjson._containers_ok_python(value, max_depth)  # type: ignore[arg-type]
    assert (strictjson._check_tree(value, max_depth) == 0) == python_ok


@pytest.mark.parametrize(
    ("value", "status"),
    [([[[]]], 0), ([[[[]]]], 1), ([1.0], 2), ({"a": {"b": -0.0}}, 2), ({"a": [1e-6]}, 2), ([0.5, 51.50735], 0)],
)
def test_c_walk_statuses(value: object, status: int) -> None:
    from stave.event import strictjson

    assert strictjson._check_tree is not None
    assert strictjson._check_tree(value, 3) == status


def test_depth_is_bounded_even_when_a_library_raises_the_recursion_limit() -> None:
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # what importing web3 does
    try:
        for deep in (b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
            with pytest.raises(JSONError) as info:
                loads(deep, JsonLimits(max_bytes=1 << 20))
            assert info.value.rule == "max-depth"
        assert loads(b'["[[[[[", {"a": "{{{{"}]', JsonLimits(max_depth=2)) == ["[[[[[", {"a": "{{{{"}]
    finally:
        sys.setrecursionlimit(before)
