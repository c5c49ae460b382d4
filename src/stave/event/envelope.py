"""The signed event: its id, canonical bytes, signing and verification. Pure.

``id = lowercase hex SHA-256 of the RFC 8785 bytes of the event without its ``sig`` member``.
The event value is kept exactly as it arrived (unknown fields included), because those are
the bytes the author signed; nothing here adds, removes or normalises a field of a signed event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from stave.errors import KeyFormatError, SchemaError, SignatureError
from stave.event.keys import PrivateKey, PublicKey, Signature
from stave.event.schema import EventEnvelope, validate_event
from stave.event.strictjson import JsonValue, canonicalize
from stave.event.types import EventType

__all__ = ["Event", "author_public_key", "event_id", "sign_event", "unsigned_canonical"]


@dataclass(frozen=True, slots=True, eq=False)
class Event:
    """A validated event. ``value`` is the JSON object as signed, ``id`` its content address."""

    value: dict[str, JsonValue]
    id: str
    unsigned_bytes: bytes
    typed: EventEnvelope
    sorted_is_canonical: bool = False
    known_canonical: bytes | None = None  # the signed event's RFC 8785 bytes, if parsing made them

    @property
    def type(self) -> EventType:
        return self.typed.event_type

    @property
    def author(self) -> str:
        return self.typed.author_pubkey

    @property
    def created_at(self) -> int:
        return self.typed.created_at

    @property
    def parents(self) -> list[str]:
        return self.typed.parents

    @property
    def body(self) -> Any:
        return self.value["body"]

    @property
    def sig(self) -> str | None:
        sig = self.value.get("sig")
        return sig if isinstance(sig, str) else None

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.id)

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes of the whole event, signature included: what stores keep."""
        if self.known_canonical is not None:
            return self.known_canonical
        return canonicalize(self.value, sorted_is_canonical=self.sorted_is_canonical)

    def verify_signature(self) -> None:
        """Return None if ``sig`` is a canonical signature of ``id`` by ``author_pubkey``."""
        if self.sig is None:
            raise SignatureError("$.sig: the event is not signed")
        public_key = author_public_key(self.author)
        try:
            signature = Signature.from_string(self.sig)
        except KeyFormatError as exc:
            raise SignatureError(f"$.sig: {exc}") from None
        try:
            signature.verify(self.digest, public_key)
        except SignatureError as exc:
            raise SignatureError(f"$.sig: {exc}") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Event) and other.id == self.id and other.sig == self.sig

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, type={self.type.name})"


def author_public_key(text: str) -> PublicKey:
    try:
        return PublicKey.from_string(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"$.author_pubkey: {exc}") from None


def unsigned_canonical(value: Mapping[str, Any], *, sorted_is_canonical: bool | None = None) -> bytes:
    """RFC 8785 bytes of the event without its ``sig`` member: what the id hashes."""
    unsigned = {key: item for key, item in value.items() if key != "sig"}
    return canonicalize(unsigned, sorted_is_canonical=sorted_is_canonical)


def event_id(value: Mapping[str, Any]) -> str:
    """The id of an event value, signed or not (``sig`` is ignored)."""
    return hashlib.sha256(unsigned_canonical(value)).hexdigest()


def sign_event(value: Mapping[str, Any], key: PrivateKey) -> Event:
    """Sign an event template with ``key`` and return the signed, validated event.

    A missing ``author_pubkey`` is filled in with the key's ``PUB_K1_`` form (the template is
    not signed yet, so this changes nothing anyone signed); a present one must be this key's,
    in either form. An existing ``sig`` is replaced.
    """
    template = {name: item for name, item in value.items() if name != "sig"}
    public_key = key.public_key
    if "author_pubkey" not in template:
        template["author_pubkey"] = public_key.to_string()
    elif author_public_key(str(template["author_pubkey"])) != public_key:
        raise SchemaError(
            "$.author_pubkey",
            f"the event names author {template['author_pubkey']} but the key is {public_key.to_string()}",
            "author",
        )
    typed = validate_event(template)
    unsigned = canonicalize(template)
    digest = hashlib.sha256(unsigned).digest()
    signed = dict(template)
    signed["sig"] = key.sign_digest(digest).to_string()
    return Event(signed, digest.hex(), unsigned, _with_sig(typed, signed["sig"]))


def _with_sig(typed: EventEnvelope, sig: str) -> EventEnvelope:
    return msgspec.structs.replace(typed, sig=sig)
