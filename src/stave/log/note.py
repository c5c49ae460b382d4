"""C2SP signed notes with Ed25519 keys, and tlog checkpoints. Pure: the curve work is ``cryptography``.

A signed note (https://c2sp.org/signed-note) is a UTF-8 text ending in a newline, a blank line,
and one or more signature lines ``— <key name> base64(key ID ‖ signature)``. The key ID is the
first four bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key) for Ed25519 (type byte 0x01).
Keys are written as in Go's ``golang.org/x/mod/sumdb/note``, so keys and notes are interchangeable
with that package and with the Go tlog tools:

- verifier key: ``<name>+<8 hex key ID>+base64(0x01 ‖ 32-byte public key)``;
- signer key: ``PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 ‖ 32-byte seed)``.

Opening a note fails closed: the whole note must be well-formed (valid UTF-8, no control
characters other than newline, canonical base64, valid key names, at most 100 signatures), every
signature from a known key must verify, and at least one must exist. Signatures from unknown keys
are skipped, as the spec requires, so witnesses and key rotation can add lines. Two deliberate
strictness choices go beyond Go's reader: base64 and key IDs must be in their canonical form
(Go's writer only produces that form), and a repeated line from a known key is verified again
rather than skipped.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the body of a log's signed note: origin, tree
size in decimal, base64 root hash, then optional extension lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stave.errors import KeyFormatError, ProofError, SignatureError, VerificationError
from stave.log.merkle import EMPTY_ROOT, HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Signer",
    "Verifier",
    "key_id",
    "open_checkpoint",
    "open_note",
    "sign_note",
]

ALG_ED25519: Final = 0x01
MAX_SIGNATURES: Final = 100  # Go's limit; the spec asks verifiers to accept at least 16
SIGNATURE_PREFIX: Final = "— "  # U+2014 EM DASH, U+0020 SPACE
_ED25519_KEY_SIZE: Final = 32
_MAX_TREE_SIZE: Final = (1 << 64) - 1
_HEX_ID = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw
_RAW_PRIVATE = serialization.PrivateFormat.Raw
_NO_ENCRYPTION = serialization.NoEncryption()


def _name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid key name (non-empty, no Unicode space, no '+'), or None."""
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "must not be empty"
    for char in name:
        if char.isspace() or char == "+":
            return f"must not contain spaces or '+', found {char!r}"
        if char < " " or "\ud800" <= char <= "\udfff":
            return f"must not contain control characters or lone surrogates, found {char!r}"
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(f"key name {name!r} {problem}")


def key_id(name: str, typed_key: bytes) -> int:
    """The 32-bit key ID: SHA-256(name ‖ 0x0A ‖ signature type ‖ public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + typed_key).digest()
    return int.from_bytes(digest[:4], "big")


def _b64decode(text: str, what: str, error: type[VerificationError], *, secret: bool = False) -> bytes:
    """Decode standard base64 that must be in its one canonical spelling (padded, no stray bits)."""
    shown = "" if secret else f": {_short(text)}"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64{shown}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise error(f"{what} is not canonical base64{shown}")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _short(text: str) -> str:
    return repr(text if len(text) <= 48 else text[:45] + "...")


class Verifier:
    """An Ed25519 note verifier: a key name and public key, identified in notes by (name, key ID)."""

    __slots__ = ("_key", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_name(name)
        if not isinstance(public_key, bytes) or len(public_key) != _ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {_ED25519_KEY_SIZE} bytes")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, bytes([ALG_ED25519]) + public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_key(cls, text: str) -> Verifier:
        """Parse ``<name>+<8 hex key ID>+base64(0x01 ‖ public key)``; the key ID must match the key."""
        if not isinstance(text, str):
            raise KeyFormatError(f"verifier key must be a string, got {type(text).__name__}")
        parts = text.split("+", 2)
        if len(parts) != 3:
            raise KeyFormatError(f"verifier key {_short(text)}: expected '<name>+<key ID>+<base64 key>'")
        name, hex_id, encoded = parts
        typed_key = _parse_key_parts(text, "verifier key", name, hex_id, encoded)
        verifier = cls(name, typed_key[1:])
        _check_key_id(text, "verifier key", hex_id, verifier.key_id)
        return verifier

    def verifier_key(self) -> str:
        """``<name>+<8 hex key ID>+base64(0x01 ‖ public key)``, the form Go's ``note.NewVerifier`` reads."""
        return f"{self.name}+{self.key_id:08x}+{_b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and (other.name, other.public_key) == (self.name, self.public_key)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))

    def __repr__(self) -> str:
        return f"Verifier({self.verifier_key()!r})"


def _parse_key_parts(text: str, what: str, name: str, hex_id: str, encoded: str, *, secret: bool = False) -> bytes:
    """Check a key's name and ID syntax and return the decoded ``0x01 ‖ 32 bytes``."""
    problem = _name_problem(name)
    if problem is not None:
        raise KeyFormatError(f"{what} {_short(text)}: key name {problem}")
    if not _HEX_ID.fullmatch(hex_id):
        got = "" if secret else f", got {hex_id!r}"
        raise KeyFormatError(f"{what} {_short(text)}: key ID must be 8 lowercase hex digits{got}")
    typed_key = _b64decode(encoded, f"{what} {_short(text)}: key", KeyFormatError, secret=secret)
    if not typed_key or typed_key[0] != ALG_ED25519:
        found = f"0x{typed_key[0]:02x}" if typed_key else "nothing"
        raise KeyFormatError(f"{what} {_short(text)}: expected Ed25519 (type 0x01), found {found}")
    if len(typed_key) != 1 + _ED25519_KEY_SIZE:
        raise KeyFormatError(
            f"{what} {_short(text)}: expected {1 + _ED25519_KEY_SIZE} key bytes with the type, got {len(typed_key)}"
        )
    return typed_key


def _check_key_id(text: str, what: str, hex_id: str, actual: int) -> None:
    if int(hex_id, 16) != actual:
        raise KeyFormatError(
            f"{what} {_short(text)}: key ID does not match the key: expected {actual:08x}, got {hex_id}"
        )


class Signer:
    """An Ed25519 note signer. Its ``repr`` never shows the secret."""

    __slots__ = ("_key", "_seed", "key_id", "name", "public_key")

    def __init__(self, name: str, private_key: bytes) -> None:
        """``private_key`` is the 32-byte Ed25519 seed (RFC 8032 private key)."""
        _check_name(name)
        if not isinstance(private_key, bytes) or len(private_key) != _ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 private key (seed) is {_ED25519_KEY_SIZE} bytes")
        self._seed = private_key
        self._key = Ed25519PrivateKey.from_private_bytes(private_key)
        self.name = name
        self.public_key = self._key.public_key().public_bytes(_RAW, _RAW_PUBLIC)
        self.key_id = key_id(name, bytes([ALG_ED25519]) + self.public_key)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A new key from the operating system's CSPRNG (through OpenSSL)."""
        seed = Ed25519PrivateKey.generate().private_bytes(_RAW, _RAW_PRIVATE, _NO_ENCRYPTION)
        return cls(name, seed)

    @classmethod
    def from_private_key_text(cls, text: str) -> Signer:
        """Parse ``PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 ‖ seed)``; the ID must match the key."""
        if not isinstance(text, str):
            raise KeyFormatError(f"signer key must be a string, got {type(text).__name__}")
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise KeyFormatError("signer key: expected 'PRIVATE+KEY+<name>+<key ID>+<base64 key>'")
        name, hex_id, encoded = parts[2:]
        # Errors never quote the key text: it is a secret. A mangled key ID may hold part of it.
        shown = f"PRIVATE+KEY+{name}+{hex_id if _HEX_ID.fullmatch(hex_id) else '…'}+…"
        typed_key = _parse_key_parts(shown, "signer key", name, hex_id, encoded, secret=True)
        signer = cls(name, typed_key[1:])
        _check_key_id(shown, "signer key", hex_id, signer.key_id)
        return signer

    def private_key_text(self) -> str:
        """``PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 ‖ seed)``, the form Go's ``note.NewSigner`` reads."""
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{_b64encode(bytes([ALG_ED25519]) + self._seed)}"

    def verifier(self) -> Verifier:
        """The matching :class:`Verifier`."""
        return Verifier(self.name, self.public_key)

    def verifier_key(self) -> str:
        """The matching verifier key text (see :meth:`Verifier.verifier_key`)."""
        return self.verifier().verifier_key()

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


def _text_problem(text: str) -> str | None:
    """Why ``text`` cannot appear in a note (a control character or a lone surrogate), or None."""
    for position, char in enumerate(text):
        if (char < " " and char != "\n") or "\ud800" <= char <= "\udfff":
            line = text.count("\n", 0, position) + 1
            return f"forbidden character {char!r} on line {line}"
    return None


def sign_note(body: str, signers: Iterable[Signer]) -> str:
    """The signed note: ``body``, a blank line, and one signature line per signer, in order.

    ``body`` must be non-empty text ending in a newline with no control characters other than
    newline; signers must have distinct (name, key ID) pairs.
    """
    if not isinstance(body, str) or not body.endswith("\n"):
        raise ValueError("a note body must be a string ending in a newline")
    problem = _text_problem(body)
    if problem is not None:
        raise ValueError(f"a note body must not contain control characters other than newline: {problem}")
    signer_list = list(signers)
    if not signer_list:
        raise ValueError("a note needs at least one signer")
    seen: set[tuple[str, int]] = set()
    message = body.encode("utf-8")
    lines = [body, "\n"]
    for signer in signer_list:
        identity = (signer.name, signer.key_id)
        if identity in seen:
            raise ValueError(f"two signers share the key {signer.name}+{signer.key_id:08x}")
        seen.add(identity)
        signature = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{SIGNATURE_PREFIX}{signer.name} {_b64encode(signature)}\n")
    return "".join(lines)


def _verifier_map(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        if not isinstance(verifier, Verifier):
            raise ValueError(f"verifiers must be Verifier objects, got {type(verifier).__name__}")
        identity = (verifier.name, verifier.key_id)
        if identity in known and known[identity] != verifier:
            raise ValueError(f"two different verifier keys share the name and ID {verifier.name}+{verifier.key_id:08x}")
        known[identity] = verifier
    return known


def open_note(text: str | bytes, verifiers: Iterable[Verifier]) -> tuple[str, tuple[str, ...]]:
    """Verify a signed note and return ``(body, names of the keys whose signatures verified)``.

    Raises :class:`~stave.errors.VerificationError` for a malformed note and
    :class:`~stave.errors.SignatureError` when a known key's signature fails or no known key
    signed. The body is returned only when the note is good.
    """
    known = _verifier_map(verifiers)
    if isinstance(text, bytes):
        try:
            note = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VerificationError(f"note is not valid UTF-8 (byte {exc.start})") from None
    elif isinstance(text, str):
        note = text
    else:
        raise VerificationError(f"note must be str or bytes, got {type(text).__name__}")
    problem = _text_problem(note)
    if problem is not None:
        raise VerificationError(f"note has a {problem}")
    split = note.rfind("\n\n")
    if split < 0:
        raise VerificationError("note has no blank line between its text and its signatures")
    body, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise VerificationError("note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES} are accepted")
    message = body.encode("utf-8")
    verified: dict[str, None] = {}
    for number, line in enumerate(lines, start=1):
        name, signature_id, signature = _parse_signature_line(number, line)
        verifier = known.get((name, signature_id))
        if verifier is None:
            continue  # an unknown key: a witness, a rotated key, another algorithm
        if not verifier.verify(message, signature):
            raise SignatureError(f"note signature {number} by known key {name}+{signature_id:08x} does not verify")
        verified[name] = None
    if not verified:
        raise SignatureError(
            f"note has no signature from a known key: expected one of {_describe(known)}, got {len(lines)} other(s)"
        )
    return body, tuple(verified)


def _parse_signature_line(number: int, line: str) -> tuple[str, int, bytes]:
    if not line.startswith(SIGNATURE_PREFIX):
        raise VerificationError(f"note signature line {number} must start with '— ' (U+2014, space)")
    name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    problem = _name_problem(name)
    if problem is not None:
        raise VerificationError(f"note signature line {number}: key name {problem}")
    if not encoded:
        raise VerificationError(f"note signature line {number}: no signature after the key name")
    raw = _b64decode(encoded, f"note signature line {number}", SignatureError)
    if len(raw) < 5:
        raise SignatureError(
            f"note signature line {number}: expected a 4-byte key ID and a signature, got {len(raw)} bytes"
        )
    return name, int.from_bytes(raw[:4], "big"), raw[4:]


def _describe(known: dict[tuple[str, int], Verifier]) -> str:
    if not known:
        return "no keys (none were given)"
    return ", ".join(sorted(f"{name}+{identity:08x}" for name, identity in known))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tlog checkpoint body: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, tuple):
            raise ValueError("checkpoint extensions must be a tuple of strings")
        for what, line in [("origin", self.origin), *(("extension line", line) for line in self.extensions)]:
            problem = _line_problem(line)
            if problem is not None:
                raise ValueError(f"checkpoint {what} {problem}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 0 <= self.size <= _MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size must be an int from 0 to 2^64 − 1, got {self.size!r}")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise ValueError(f"checkpoint root hash must be {HASH_SIZE} bytes")
        if self.size == 0 and self.root_hash != EMPTY_ROOT:
            raise ValueError("an empty tree's root hash is SHA-256 of the empty string")

    def to_body(self) -> str:
        """The note text: one line each for origin, size, base64 root, then the extension lines."""
        lines = [self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        """Parse a checkpoint note text; raise :class:`~stave.errors.VerificationError` if malformed."""
        if not isinstance(body, str) or not body.endswith("\n"):
            raise VerificationError("checkpoint must be text ending in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise VerificationError(f"checkpoint has wrong size: expected at least 3 lines, got {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        for number, line in enumerate(lines, start=1):
            problem = _line_problem(line)
            if problem is not None:
                raise VerificationError(f"checkpoint line {number} {problem}")
        if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_TREE_SIZE:
            raise VerificationError(
                f"checkpoint size must be a decimal from 0 to 2^64 − 1 without leading zeros, got {size_text!r}"
            )
        root = _b64decode(root_text, "checkpoint root hash", VerificationError)
        if len(root) != HASH_SIZE:
            raise VerificationError(f"checkpoint root hash has wrong size: expected {HASH_SIZE} bytes, got {len(root)}")
        size = int(size_text)
        if size == 0 and root != EMPTY_ROOT:
            raise VerificationError(f"checkpoint of an empty tree must have the empty root {_b64encode(EMPTY_ROOT)}")
        return cls(origin, size, root, tuple(extensions))


def _line_problem(line: object) -> str | None:
    if not isinstance(line, str):
        return f"must be a string, got {type(line).__name__}"
    if not line:
        return "must not be empty"
    if "\n" in line:
        return "must be a single line"
    return _text_problem(line)


def open_checkpoint(text: str | bytes, verifiers: Iterable[Verifier], origin: str) -> Checkpoint:
    """Open a signed checkpoint note (see :func:`open_note`) and check it is from the expected log.

    The origin is the log's identity: a checkpoint of another log verified by a shared key must
    not be taken for this log's, so a mismatch raises :class:`~stave.errors.ProofError`.
    """
    body, _ = open_note(text, verifiers)
    checkpoint = Checkpoint.from_body(body)
    if checkpoint.origin != origin:
        raise ProofError(f"checkpoint is for another log: expected origin {origin!r}, got {checkpoint.origin!r}")
    return checkpoint
