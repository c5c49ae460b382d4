"""The one exception tree of stave, branched by who is at fault.

- ``VerificationError``: the data is bad (malformed JSON, schema, key, signature, digest,
  proof). Retrying will not help; the caller must change the input.
- ``StorageError``: a storage backend failed or holds bad bytes.
- ``LedgerError``: an anchoring ledger failed.

Every message says what was expected, what was found and where.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BlobNotFound",
    "CanonicalizationError",
    "ConfigError",
    "DigestMismatchError",
    "IntegrityError",
    "JSONError",
    "KeyFormatError",
    "LedgerError",
    "ProofError",
    "SchemaError",
    "SignatureError",
    "StaveError",
    "StorageError",
    "VerificationError",
]


class StaveError(Exception):
    """Base of every error stave raises on purpose."""


class ConfigError(StaveError, ValueError):
    """A configuration file, environment variable or option is invalid."""


class VerificationError(StaveError, ValueError):
    """Input data failed a check; the data, not the system, is at fault."""


class JSONError(VerificationError):
    """Bytes are not strict JSON (RFC 8259 + I-JSON limits).

    ``path`` is a JSONPath such as ``$.body.tracks[3].title`` (``$`` for the whole
    document), ``rule`` a short machine-readable name of the broken rule, and ``offset``
    the byte offset in the input where it is known.
    """

    def __init__(self, path: str, rule: str, detail: str, offset: int | None = None) -> None:
        self.path = path
        self.rule = rule
        self.detail = detail
        self.offset = offset
        where = path if offset is None else f"{path} (byte {offset})"
        super().__init__(f"{where}: {detail} [{rule}]")


class CanonicalizationError(VerificationError):
    """A value cannot be put in RFC 8785 canonical form (e.g. NaN, a lone surrogate)."""


class SchemaError(VerificationError):
    """An event does not match the schema of its type; ``path`` names the field."""

    def __init__(self, path: str, detail: str, rule: str = "schema") -> None:
        self.path = path
        self.rule = rule
        self.detail = detail
        super().__init__(f"{path}: {detail} [{rule}]")


class KeyFormatError(VerificationError):
    """A key or signature string is malformed (EOS/Antelope K1 keys, signed-note keys)."""


class SignatureError(VerificationError):
    """A signature is malformed, non-canonical, or made by another key."""


class DigestMismatchError(VerificationError):
    """Bytes do not hash to the digest they are addressed by."""


class ProofError(VerificationError):
    """A Merkle proof, checkpoint or receipt does not verify."""


class StorageError(StaveError):
    """A storage backend failed."""


class BlobNotFound(StorageError, KeyError):
    """No backend holds the requested object."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "not found"


class IntegrityError(StorageError):
    """A backend returned bytes that fail verification."""


class BackendUnavailable(StorageError):
    """A backend cannot be reached now; retrying later may succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class LedgerError(StaveError):
    """An anchoring ledger failed or returned an unverifiable receipt."""
