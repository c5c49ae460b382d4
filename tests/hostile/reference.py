"""The strict JSON rules written a second time, independently, with the standard library.

The fuzz targets (hypothesis and atheris) hold ``stave.event.strictjson`` to this reference:
same inputs accepted, same values, of the same types.
"""

from __future__ import annotations

import json
import math
from typing import Any

from stave.event.strictjson import DEFAULT_LIMITS, MAX_SAFE_INTEGER

__all__ = ["reference_loads", "same"]


def same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON types all the way down (1 is not 1.0 is not True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return bool(a == b)


class _Refused(Exception):
    pass


def _refuse(*_: object) -> Any:
    raise _Refused


def _reference_int(literal: str) -> int:
    number = int(literal)
    if abs(number) > MAX_SAFE_INTEGER:
        raise _Refused
    return number


def _reference_float(literal: str) -> float:
    number = float(literal)
    if math.isinf(number) or (number.is_integer() and MAX_SAFE_INTEGER < abs(number) < 1e21):
        raise _Refused
    return number


def _reference_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _Refused
    return dict(pairs)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(text for item in value.values() for text in _texts(item))]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return [value] if isinstance(value, str) else []


def reference_loads(data: bytes) -> tuple[bool, Any]:
    """The strict rules written independently with the standard library: (accepted, value)."""
    try:
        text = data.decode("utf-8")  # strict: no invalid sequences, no encoded surrogates
        value = json.loads(
            text,  # the stdlib refuses a BOM, control characters and trailing data itself
            object_pairs_hook=_reference_object,
            parse_int=_reference_int,
            parse_float=_reference_float,
            parse_constant=_refuse,
        )
        for piece in _texts(value):
            piece.encode("utf-8")  # a lone surrogate from an escape cannot be encoded
    except (_Refused, ValueError, RecursionError):
        return False, None
    return _depth(value) <= DEFAULT_LIMITS.max_depth, value
