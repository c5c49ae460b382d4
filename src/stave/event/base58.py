"""Bitcoin-alphabet Base58, as EOS/Antelope keys and signatures use it. Pure.

Hand-rolled because signature verification decodes one ``SIG_K1_`` string per event and the
PyPI ``base58`` package takes about 4× longer for it (the C version in ``_speedups.c``, 50×);
tests hold both to that package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

_b58decode_c: Callable[[str], bytes] | None
try:  # the C decoder (built from _speedups.c when a compiler is present)
    from stave.event._speedups import b58decode as _b58decode_c
except ImportError:  # pragma: no cover - exercised where no compiler was available
    _b58decode_c = None

__all__ = ["ALPHABET", "b58decode", "b58encode"]

ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_VALUES: Final = {char: value for value, char in enumerate(ALPHABET)}


def b58encode(data: bytes) -> str:
    """Encode bytes; each leading zero byte becomes a leading ``1``."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode a Base58 string; raise ``ValueError`` naming the first invalid character."""
    if _b58decode_c is not None:
        return _b58decode_c(text)
    return _b58decode_python(text)


def _b58decode_python(text: str) -> bytes:
    """The reference for the C decoder in ``_speedups.c`` (tests hold the two to each other)."""
    number = 0
    values = _VALUES
    try:
        for char in text:
            number = number * 58 + values[char]
    except KeyError:
        index = next(i for i, c in enumerate(text) if c not in values)
        raise ValueError(f"invalid base58 character {text[index]!r} at position {index}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * zeros + body
