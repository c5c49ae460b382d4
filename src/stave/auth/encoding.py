"""Unpadded base64url (RFC 4648 §5), the one spelling auth tokens and headers use. Pure.

Decoding is strict: only the URL-safe alphabet, no padding, no whitespace, and no stray bits in
the last character, so every byte string has exactly one text form and a token cannot be altered
into a second spelling that still verifies.
"""

from __future__ import annotations

import base64
import binascii
import re

from stave.auth.errors import AuthError

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*\Z")


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str, error: type[AuthError], *, size: int | None = None) -> bytes:
    """Decode canonical unpadded base64url; raise ``error("malformed", …)`` naming ``what``.

    ``size`` is the exact decoded length required, if any.
    """
    if not isinstance(text, str) or not _ALPHABET.match(text) or len(text) % 4 == 1:
        raise error("malformed", f"{what} is not unpadded base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern above already rules these out
        raise error("malformed", f"{what} is not unpadded base64url") from None
    if b64url_encode(raw) != text:
        raise error("malformed", f"{what} is not canonical base64url (stray bits in the last character)")
    if size is not None and len(raw) != size:
        raise error("malformed", f"{what} must be {size} bytes, got {len(raw)}")
    return raw
