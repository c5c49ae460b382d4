"""Strict JSON in, RFC 8785 canonical JSON out. Pure: no I/O, no clock, no environment.

Strict means RFC 8259 plus the I-JSON rules RFC 8785 relies on: UTF-8 only, no byte-order
mark, no duplicate object keys, no NaN or Infinity, no lone surrogates, integer literals within
±(2^53−1), nothing after the document, and bounded size and nesting. Every rejection raises
:class:`~stave.errors.JSONError` naming the JSONPath and the rule.

Speed matters (every ingested event passes here), so there are two parsers:

- the *fast path* parses with orjson (which already rejects invalid UTF-8, lone surrogates,
  NaN/Infinity, control characters and trailing data) and proves the remaining rules cheaply:
  a walk over containers for depth and unusual floats, orjson's 53-bit integer check, and a
  count of ``:`` bytes (equal in the input and the re-serialised value exactly when no object
  member was dropped as a duplicate; inputs with ``\\u`` escapes skip this proof);
- the *slow path* re-parses with the standard library's ``json`` and hooks that mark every
  violation in place, then walks the tree to report the first one with its path. It runs only
  when the fast path cannot prove the input clean, so its cost is paid by bad or unusual input.

Canonical output uses orjson's key-sorted serialisation where it provably equals RFC 8785
(no key with characters above U+FFFF, floats in the range where both print the same digits)
and the reference ``rfc8785`` package otherwise. Tests hold both to the RFC's vectors and to
``rfc8785`` on generated inputs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson
import rfc8785

from stave.errors import CanonicalizationError, JSONError

_check_tree: Callable[[object, int], int] | None
try:  # the C walk (built from _speedups.c when a compiler is present) is ~20x faster
    from stave.event._speedups import check_tree as _check_tree
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _check_tree = None

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_SAFE_INTEGER",
    "JsonLimits",
    "JsonValue",
    "ParsedJson",
    "canonicalize",
    "format_path",
    "loads",
    "parse",
]

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

MAX_SAFE_INTEGER: Final = 2**53 - 1

# Lead bytes of 4-byte UTF-8 sequences: characters above U+FFFF, the only ones whose UTF-16
# order (RFC 8785 §3.2.3) differs from the code-point order orjson sorts by.
_ASTRAL_LEAD_BYTES: Final = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")
_SORT_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """Resource limits for untrusted JSON. The defaults fit a full 30-track release bundle."""

    max_bytes: int = 1 << 20  # the IPFS block limit: an event must fit in one block
    max_depth: int = 64

    def __post_init__(self) -> None:
        if self.max_bytes < 2:
            raise ValueError(f"max_bytes must be at least 2, got {self.max_bytes}")
        if not 1 <= self.max_depth <= 512:
            raise ValueError(f"max_depth must be between 1 and 512, got {self.max_depth}")


DEFAULT_LIMITS: Final = JsonLimits()


@dataclass(frozen=True, slots=True)
class ParsedJson:
    """A strictly parsed JSON value.

    ``sorted_is_canonical`` records that orjson's key-sorted output of this value is exactly
    its RFC 8785 form, so :func:`canonicalize` may take the fast serialiser; ``canonical`` holds
    the RFC 8785 bytes of the whole value when parsing already produced them.
    """

    value: JsonValue
    sorted_is_canonical: bool
    canonical: bytes | None = None


def loads(data: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> JsonValue:
    """Parse strict JSON and return the value; raise :class:`JSONError` on any violation."""
    return parse(data, limits).value


def parse(data: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> ParsedJson:
    """Parse strict JSON (see the module docstring for the rules)."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate in a str: let the slow path name it
            return _parse_slow(data, limits, None)
    size = len(data)
    if size > limits.max_bytes:
        raise JSONError("$", "max-size", f"document is {size} bytes, the limit is {limits.max_bytes}")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _parse_slow(data, limits, str(exc))
    # A backslash is rare in events; one memchr-fast test spares the two-byte search.
    if (b"\\" in data and b"\\u" in data) or not _containers_ok(value, limits.max_depth):
        return _parse_slow(data, limits, None)
    try:
        compact = orjson.dumps(value, option=_SORT_OPTIONS)
    except orjson.JSONEncodeError:
        return _parse_slow(data, limits, None)
    # Input already in canonical form (stored copies, careful clients) proves itself at once;
    # otherwise equal ':' counts prove no member was dropped as a duplicate.
    if compact != data and compact.count(b":") != data.count(b":"):
        return _parse_slow(data, limits, None)
    astral = not data.isascii() and any(lead in data for lead in _ASTRAL_LEAD_BYTES)
    return ParsedJson(value, sorted_is_canonical=not astral, canonical=None if astral else compact)


def canonicalize(value: Any, *, sorted_is_canonical: bool | None = None) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    ``value`` may be anything built of dict (str keys), list, tuple, str, int, float, bool and
    None. Pass ``sorted_is_canonical`` from a :class:`ParsedJson` (for a value or any part of
    it) to skip the type walk; leave it ``None`` for values built in Python.
    """
    if sorted_is_canonical is None:
        sorted_is_canonical = _check_python_value(value)
    if sorted_is_canonical:
        try:
            return orjson.dumps(value, option=_SORT_OPTIONS)
        except orjson.JSONEncodeError as exc:
            raise CanonicalizationError(f"cannot canonicalise: {exc}") from exc
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalizationError(f"cannot canonicalise: {exc}") from exc


def format_path(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """Render path parts as JSONPath: ``$.body.tracks[3]["odd key"]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            try:
                part.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: escape it so the message can be printed
                out.append(f"[{json.dumps(part)}]")  # noqa: TID251
            else:
                out.append(f"[{json.dumps(part, ensure_ascii=False)}]")  # noqa: TID251
    return "".join(out)


# --- fast path ---------------------------------------------------------------------------


def _float_prints_alike(x: float) -> bool:
    """True where orjson and RFC 8785 (ECMAScript) print the same text for ``x``.

    Both print the shortest round-trip digits; they differ only in when they switch to
    exponent notation and in integral values (``1.0`` vs ``1``). In [1e-5, 1e15) for
    non-integral values both print plain decimals (held to ``rfc8785`` by a test).
    """
    return not x.is_integer() and 1e-5 <= abs(x) < 1e15


def _containers_ok(root: JsonValue, max_depth: int) -> bool:
    """Depth within bounds and every float prints alike; False sends input to the slow path."""
    if _check_tree is not None:
        return _check_tree(root, max_depth) == 0
    return _containers_ok_python(root, max_depth)


def _containers_ok_python(root: JsonValue, max_depth: int) -> bool:
    """The reference for the C walk in ``_speedups.c`` (tests hold the two to each other)."""
    if type(root) is float:
        return _float_prints_alike(root)
    if type(root) is not dict and type(root) is not list:
        return True
    stack: list[tuple[Any, int]] = [(root, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        if depth > max_depth:
            return False
        for item in node.values() if type(node) is dict else node:
            kind = type(item)
            if kind is dict or kind is list:
                push((item, depth + 1))
            elif kind is float and not _float_prints_alike(item):
                return False
    return True


# --- slow path ---------------------------------------------------------------------------


class _Violation:
    """Placed in the tree by the parse hooks where a rule is broken; found by the walk."""

    __slots__ = ("detail", "key", "rule")

    def __init__(self, rule: str, detail: str, key: str | None = None) -> None:
        self.rule = rule
        self.detail = detail
        self.key = key


def _parse_int(literal: str) -> int | _Violation:
    try:
        number = int(literal)
    except ValueError:  # beyond Python's digit limit: certainly out of range
        number = MAX_SAFE_INTEGER + 1
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return number
    shown = literal if len(literal) <= 40 else literal[:37] + "..."
    return _Violation("integer-range", f"integer {shown} is outside ±(2^53−1)")


def _parse_float(literal: str) -> float | _Violation:
    number = float(literal)
    if math.isinf(number):
        return _Violation("non-finite", f"number {literal[:40]} overflows to infinity")
    if _is_big_integer(number):
        return _Violation("integer-range", _big_integer_detail(literal[:40], number))
    return number


def _is_big_integer(number: float) -> bool:
    """An integral double that RFC 8785 prints as an integer literal beyond ±(2^53−1).

    Such a number (``1e16``, ``9007199254740992.0``) would canonicalise to text this parser
    refuses, so it is refused on the way in, whatever its spelling, and never stored.
    """
    return number.is_integer() and MAX_SAFE_INTEGER < abs(number) < 1e21


def _big_integer_detail(shown: str, number: float) -> str:
    return f"number {shown} is an integer outside ±(2^53−1) (canonical form {int(number)})"


def _parse_constant(name: str) -> _Violation:
    return _Violation("non-finite", f"{name} is not valid JSON")


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any] | _Violation:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return _Violation("duplicate-key", f"duplicate object key {key!r}", key)
        seen.add(key)
    raise AssertionError("unreachable: dict() dropped a pair without a duplicate")


def _parse_slow(data: bytes | str, limits: JsonLimits, fast_error: str | None) -> ParsedJson:
    bad_utf8_at: int | None = None
    if isinstance(data, bytes):
        if len(data) > limits.max_bytes:
            raise JSONError("$", "max-size", f"document is {len(data)} bytes, the limit is {limits.max_bytes}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_utf8_at = exc.start
            text = data.decode("utf-8", "surrogateescape")
    else:
        text = data
    if text.startswith("\ufeff"):
        raise JSONError("$", "bom", "a byte-order mark is not allowed before JSON", 0)
    # Bound the nesting before the recursive parser sees it: its guard is the interpreter's
    # recursion limit, which libraries raise (web3 sets 100,000), and then the C stack overflows.
    too_deep = _depth_exceeded_at(text, limits.max_depth)
    if too_deep is not None:
        raise JSONError(
            _path_at(text, too_deep),
            "max-depth",
            f"nesting is deeper than {limits.max_depth}",
            _byte_offset(text, too_deep),
        )
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_hook,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        offset = _byte_offset(text, exc.pos)
        if bad_utf8_at is not None and bad_utf8_at <= offset:
            raise JSONError(_path_at(text, exc.pos), "utf-8", "invalid UTF-8 byte sequence", bad_utf8_at) from None
        rule = "trailing-data" if exc.msg == "Extra data" else "syntax"
        detail = "data after the end of the JSON document" if rule == "trailing-data" else exc.msg
        path = "$" if rule == "trailing-data" else _path_at(text, exc.pos)
        raise JSONError(path, rule, f"{detail} (line {exc.lineno}, column {exc.colno})", offset) from None
    except RecursionError:
        raise JSONError("$", "max-depth", f"nesting is deeper than {limits.max_depth}") from None
    sorted_is_canonical = _walk_slow(value, limits.max_depth, bad_utf8_at)
    if fast_error is not None:
        # orjson refused something the slow path did not find: stay closed.
        raise JSONError("$", "syntax", fast_error)
    return ParsedJson(value, sorted_is_canonical)


def _walk_slow(root: Any, max_depth: int, bad_utf8_at: int | None) -> bool:
    """Raise for the first violation in document order; return ``sorted_is_canonical``."""
    sorted_ok = True
    # Entries: (value, path parts, depth). Children pushed reversed to pop in order.
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(root, (), 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, _Violation):
            full = (*path, node.key) if node.key is not None else path
            raise JSONError(format_path(full), node.rule, node.detail)
        if isinstance(node, dict):
            if depth + 1 > max_depth:
                raise JSONError(format_path(path), "max-depth", f"nesting is deeper than {max_depth}")
            children: list[tuple[Any, tuple[str | int, ...], int]] = []
            for key, item in node.items():
                _check_string(key, (*path, key), bad_utf8_at, "key")
                if not key.isascii() and max(key) > "\uffff":
                    sorted_ok = False
                children.append((item, (*path, key), depth + 1))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            if depth + 1 > max_depth:
                raise JSONError(format_path(path), "max-depth", f"nesting is deeper than {max_depth}")
            stack.extend((node[i], (*path, i), depth + 1) for i in range(len(node) - 1, -1, -1))
        elif isinstance(node, str):
            _check_string(node, path, bad_utf8_at, "string")
        elif isinstance(node, float) and not _float_prints_alike(node):
            sorted_ok = False
    if bad_utf8_at is not None:  # invalid bytes outside any string still make the input invalid
        raise JSONError("$", "utf-8", "invalid UTF-8 byte sequence", bad_utf8_at)
    return sorted_ok


def _check_string(text: str, path: tuple[str | int, ...], bad_utf8_at: int | None, what: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = ord(text[exc.start])
        if bad_utf8_at is not None and 0xDC80 <= char <= 0xDCFF:
            raise JSONError(format_path(path), "utf-8", f"invalid UTF-8 byte sequence in {what}", bad_utf8_at) from None
        raise JSONError(format_path(path), "lone-surrogate", f"lone surrogate U+{char:04X} in {what}") from None


_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def _depth_exceeded_at(text: str, max_depth: int) -> int | None:
    """The position of the first bracket nested deeper than ``max_depth``, skipping strings."""
    depth = 0
    for match in _DEPTH_TOKENS.finditer(text):
        lexeme = match.group()
        if lexeme in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif lexeme in "]}":
            depth -= 1
    return None


def _byte_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode("utf-8", "surrogateescape"))


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[{}\[\]:,]|[^{}\[\]:,"\s]+|\s+', re.DOTALL)


def _path_at(text: str, pos: int) -> str:
    """The JSONPath of the value being read at ``pos`` (for syntax errors)."""
    # Each frame: [is_object, key_or_index, expecting_key]
    frames: list[list[Any]] = []
    for match in _TOKEN.finditer(text, 0, pos):
        lexeme = match.group()
        if lexeme in ("{", "["):
            frames.append([lexeme == "{", None if lexeme == "{" else 0, True])
        elif lexeme in ("}", "]"):
            if frames:
                frames.pop()
        elif not frames:
            continue
        elif lexeme == ",":
            frame = frames[-1]
            if frame[0]:
                frame[2] = True
            else:
                frame[1] += 1
        elif lexeme == ":":
            frames[-1][2] = False
        elif lexeme.startswith('"') and frames[-1][0] and frames[-1][2]:
            try:
                frames[-1][1] = json.loads(lexeme)
            except ValueError:
                frames[-1][1] = lexeme.strip('"')
    parts: list[str | int] = []
    for is_object, key, expecting_key in frames:
        if is_object and (key is None or expecting_key):
            break
        parts.append(key)
    return format_path(parts)


# --- values built in Python --------------------------------------------------------------

_SCALARS: Final[tuple[type, ...]] = (str, int, bool, type(None))


def _check_python_value(root: Any) -> bool:
    """Validate a Python value as JSON for canonicalisation; return ``sorted_is_canonical``."""
    sorted_ok = True
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(root, ())]
    check: Callable[[str, tuple[str | int, ...]], None] = _check_python_string
    while stack:
        node, path = stack.pop()
        kind = type(node)
        if kind is dict:
            for key, item in node.items():
                if type(key) is not str:
                    raise CanonicalizationError(f"{format_path(path)}: object key {key!r} is not a string")
                check(key, (*path, key))
                if not key.isascii() and max(key) > "\uffff":
                    sorted_ok = False
                stack.append((item, (*path, key)))
        elif kind is list or kind is tuple:
            stack.extend((item, (*path, i)) for i, item in enumerate(node))
        elif kind is str:
            check(node, path)
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= node <= MAX_SAFE_INTEGER:
                raise CanonicalizationError(f"{format_path(path)}: integer {node} is outside ±(2^53−1)")
        elif kind is float:
            if not math.isfinite(node):
                raise CanonicalizationError(f"{format_path(path)}: {node} is not a finite number")
            if _is_big_integer(node):
                raise CanonicalizationError(f"{format_path(path)}: {_big_integer_detail(repr(node), node)}")
            if not _float_prints_alike(node):
                sorted_ok = False
        elif kind not in _SCALARS:
            raise CanonicalizationError(f"{format_path(path)}: {kind.__name__} is not a JSON type")
    return sorted_ok


def _check_python_string(text: str, path: tuple[str | int, ...]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalizationError(
            f"{format_path(path)}: lone surrogate U+{ord(text[exc.start]):04X} cannot be encoded"
        ) from None
