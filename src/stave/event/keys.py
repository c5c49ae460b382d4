"""secp256k1 keys and signatures in the EOS/Antelope string forms, byte-compatible with eosjs.

Formats (checksums are always checked, the WIF checksum too, which eosjs skips):

- ``PUB_K1_`` + base58(pub33 ‖ ripemd160(pub33 ‖ "K1")[:4]); legacy ``EOS`` + base58(pub33 ‖
  ripemd160(pub33)[:4]).
- ``PVT_K1_`` + base58(priv32 ‖ ripemd160(priv32 ‖ "K1")[:4]); legacy WIF base58(0x80 ‖ priv32 ‖
  sha256d(0x80 ‖ priv32)[:4]).
- ``SIG_K1_`` + base58(sig65 ‖ ripemd160(sig65 ‖ "K1")[:4]) with sig65 = (31 + recovery id) ‖ r ‖ s.

Signing signs a 32-byte digest directly (eosjs ``sign(digest, false)``) with RFC 6979 nonces,
retrying with extra nonce data until the signature is canonical in the EOS sense (r and s each
exactly 32 bytes in DER, which also needs low-S). Verification accepts only such signatures,
with a compressed-key header (31–34), so nobody but the key holder can produce a second valid
signature for the same event. Pure: the curve work is libsecp256k1 through coincurve.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Final

import coincurve
from coincurve._libsecp256k1 import ffi, lib

from stave.errors import KeyFormatError, SignatureError
from stave.event.base58 import b58decode, b58encode

__all__ = ["PrivateKey", "PublicKey", "Signature", "is_eos_canonical"]

# Order of the secp256k1 group.
CURVE_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER: Final = CURVE_ORDER // 2
_MAX_SIGN_ATTEMPTS: Final = 1000  # each attempt succeeds with p ≈ 1/2; 1000 failures never happen


_RIPEMD160 = hashlib.new("ripemd160")  # copying a prepared hash skips the OpenSSL lookup of new()


def _ripemd160(data: bytes) -> bytes:
    hasher = _RIPEMD160.copy()
    hasher.update(data)
    return hasher.digest()


def _k1_checksum(payload: bytes) -> bytes:
    return _ripemd160(payload + b"K1")[:4]


def _decode_checked(text: str, prefix: str, size: int, what: str) -> bytes:
    """Decode ``prefix`` + base58(payload ‖ K1 checksum) and return the payload."""
    try:
        raw = b58decode(text[len(prefix) :])
    except ValueError as exc:
        raise KeyFormatError(f"{what} {_short(text)}: {exc}") from None
    if len(raw) != size + 4:
        raise KeyFormatError(f"{what} {_short(text)}: expected {size + 4} bytes after base58, got {len(raw)}")
    payload, checksum = raw[:size], raw[size:]
    if _k1_checksum(payload) != checksum:
        raise KeyFormatError(f"{what} {_short(text)}: checksum mismatch (mistyped or altered)")
    return payload


def _short(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:21] + "...")


class PublicKey:
    """A compressed secp256k1 public key."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        if len(data) != 33 or data[0] not in (2, 3):
            raise KeyFormatError(f"public key must be 33 bytes, compressed (02/03), got {len(data)} bytes")
        try:
            coincurve.PublicKey(data)
        except ValueError:
            raise KeyFormatError("public key is not a point on secp256k1") from None
        self.data = data

    @classmethod
    def _trusted(cls, data: bytes) -> PublicKey:
        """A key libsecp256k1 just produced: skip re-validating the point."""
        key = cls.__new__(cls)
        key.data = data
        return key

    @classmethod
    def from_string(cls, text: str) -> PublicKey:
        """Parse ``PUB_K1_…`` or legacy ``EOS…``; the result is cached per string."""
        return _public_key_from_string(text)

    def to_string(self) -> str:
        return "PUB_K1_" + b58encode(self.data + _k1_checksum(self.data))

    def to_legacy_string(self) -> str:
        return "EOS" + b58encode(self.data + _ripemd160(self.data)[:4])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"PublicKey({self.to_string()!r})"

    def __str__(self) -> str:
        return self.to_string()


@functools.lru_cache(maxsize=4096)
def _public_key_from_string(text: str) -> PublicKey:
    if not isinstance(text, str):
        raise KeyFormatError(f"public key must be a string, got {type(text).__name__}")
    if text.startswith("PUB_K1_"):
        return PublicKey(_decode_checked(text, "PUB_K1_", 33, "public key"))
    if text.startswith(("PUB_R1_", "PUB_WA_")):
        raise KeyFormatError(f"public key {_short(text)}: only K1 (secp256k1) keys are supported")
    if text.startswith("EOS"):
        try:
            raw = b58decode(text[3:])
        except ValueError as exc:
            raise KeyFormatError(f"public key {_short(text)}: {exc}") from None
        if len(raw) != 37:
            raise KeyFormatError(f"public key {_short(text)}: expected 37 bytes after base58, got {len(raw)}")
        if _ripemd160(raw[:33])[:4] != raw[33:]:
            raise KeyFormatError(f"public key {_short(text)}: checksum mismatch (mistyped or altered)")
        return PublicKey(raw[:33])
    raise KeyFormatError(f"public key {_short(text)}: expected a PUB_K1_… or legacy EOS… key")


class PrivateKey:
    """A secp256k1 private key. Its ``repr`` never shows the secret."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise KeyFormatError(f"private key must be 32 bytes, got {len(secret)}")
        number = int.from_bytes(secret, "big")
        if not 0 < number < CURVE_ORDER:
            raise KeyFormatError("private key is out of range for secp256k1")
        self._key = coincurve.PrivateKey(secret)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from the operating system's CSPRNG (through libsecp256k1's context)."""
        return cls(coincurve.PrivateKey().secret)

    @classmethod
    def from_string(cls, text: str) -> PrivateKey:
        """Parse ``PVT_K1_…`` or a legacy WIF key (checksum verified)."""
        text = text.strip()
        if text.startswith("PVT_K1_"):
            return cls(_decode_checked(text, "PVT_K1_", 32, "private key"))
        if text.startswith(("PVT_R1_", "PVT_WA_")):
            raise KeyFormatError("private key: only K1 (secp256k1) keys are supported")
        try:
            raw = b58decode(text)
        except ValueError as exc:
            raise KeyFormatError(f"private key: not PVT_K1_… and not WIF ({exc})") from None
        if len(raw) != 37 or raw[0] != 0x80:
            raise KeyFormatError("private key: expected PVT_K1_… or a 51-character WIF key starting with 5")
        payload, checksum = raw[:33], raw[33:]
        if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
            raise KeyFormatError("private key: WIF checksum mismatch (mistyped or altered)")
        return cls(payload[1:])

    @property
    def secret(self) -> bytes:
        return bytes(self._key.secret)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self._key.public_key.format(compressed=True))

    def to_string(self) -> str:
        secret = self.secret
        return "PVT_K1_" + b58encode(secret + _k1_checksum(secret))

    def to_wif(self) -> str:
        payload = b"\x80" + self.secret
        return b58encode(payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4])

    def sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest; deterministic, EOS-canonical and low-S."""
        if len(digest) != 32:
            raise ValueError(f"digest must be 32 bytes, got {len(digest)}")
        for attempt in range(_MAX_SIGN_ATTEMPTS):
            # Attempt 0 is plain RFC 6979; later ones add the counter as extra data (§3.6).
            extra = ffi.NULL if attempt == 0 else ffi.new("unsigned char[32]", attempt.to_bytes(32, "big"))
            compact = self._key.sign_recoverable(
                digest, hasher=None, custom_nonce=(lib.secp256k1_nonce_function_rfc6979, extra)
            )
            data = bytes([31 + compact[64]]) + compact[:64]
            if is_eos_canonical(data):
                return Signature(data)
        raise AssertionError("no canonical signature found")  # pragma: no cover

    def __repr__(self) -> str:
        return f"PrivateKey(public={self.public_key.to_string()!r})"


def is_eos_canonical(data: bytes) -> bool:
    """eosjs's ``isCanonical``: r and s each encode in exactly 32 DER bytes, and s is low."""
    return (
        not data[1] & 0x80
        and not (data[1] == 0 and not data[2] & 0x80)
        and not data[33] & 0x80
        and not (data[33] == 0 and not data[34] & 0x80)
        and int.from_bytes(data[33:65], "big") <= _HALF_ORDER
    )


class Signature:
    """A recoverable K1 signature: header (31 + recovery id), r, s."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        if len(data) != 65:
            raise KeyFormatError(f"signature must be 65 bytes, got {len(data)}")
        self.data = data

    @classmethod
    def from_string(cls, text: str) -> Signature:
        if not isinstance(text, str):
            raise KeyFormatError(f"signature must be a string, got {type(text).__name__}")
        if not text.startswith("SIG_K1_"):
            if text.startswith(("SIG_R1_", "SIG_WA_")):
                raise KeyFormatError("signature: only K1 (secp256k1) signatures are supported")
            raise KeyFormatError(f"signature {_short(text)}: expected SIG_K1_…")
        return cls(_decode_checked(text, "SIG_K1_", 65, "signature"))

    def to_string(self) -> str:
        return "SIG_K1_" + b58encode(self.data + _k1_checksum(self.data))

    @property
    def recovery_id(self) -> int:
        return self.data[0] - 31

    def recover(self, digest: bytes) -> PublicKey:
        """Recover the signer's key, enforcing the canonical form first."""
        header = self.data[0]
        if not 31 <= header <= 34:
            raise SignatureError(f"signature header must be 31-34 (compressed key), got {header}")
        if not is_eos_canonical(self.data):
            s = int.from_bytes(self.data[33:65], "big")
            why = "s is high (not low-S)" if s > _HALF_ORDER else "r or s is not 32 canonical bytes"
            raise SignatureError(f"signature is not canonical: {why}")
        return PublicKey._trusted(self._recover_bytes(digest))

    def _recover_bytes(self, digest: bytes) -> bytes:
        try:
            key = coincurve.PublicKey.from_signature_and_message(
                self.data[1:] + bytes([self.data[0] - 31]), digest, hasher=None
            )
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"signature does not recover a key: {exc}") from None
        return bytes(key.format(compressed=True))

    def verify(self, digest: bytes, public_key: PublicKey) -> None:
        """Return None if this signs ``digest`` under ``public_key``; raise otherwise."""
        recovered = self.recover(digest)
        if recovered.data != public_key.data:
            raise SignatureError(
                f"signature does not match: it recovers {recovered.to_string()}, not {public_key.to_string()} "
                "(the content was altered or another key signed it)"
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"Signature({self.to_string()!r})"

    def __str__(self) -> str:
        return self.to_string()
