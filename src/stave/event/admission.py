"""The one admission function: every path that accepts an event (CLI, log, server) calls it.

Order matters for cost and for clear errors: size and strict JSON first (cheap, and nothing
else can run on bad JSON), then the schema (names the field), then the id and the signature
(the expensive curve operation runs last, only on well-formed events). Pure: the caller passes
``now`` where a clock check is wanted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import orjson
from msgspec import UNSET

from stave.errors import DigestMismatchError, KeyFormatError, SchemaError, SignatureError, VerificationError
from stave.event.envelope import Event, author_public_key
from stave.event.keys import Signature
from stave.event.schema import EventEnvelope, validate_event
from stave.event.strictjson import DEFAULT_LIMITS, JsonLimits, JsonValue, canonicalize, parse
from stave.event.types import EventType

__all__ = ["DEFAULT_POLICY", "AdmissionPolicy", "admit", "check_event"]


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """What an accepting path allows: JSON limits, clock skew, and the event types it takes."""

    limits: JsonLimits = DEFAULT_LIMITS
    max_future_skew: int = 300  # seconds an event's created_at may be ahead of ``now``
    accepted_types: frozenset[EventType] = field(default_factory=lambda: frozenset(EventType))


DEFAULT_POLICY = AdmissionPolicy()


def check_event(
    data: bytes | str, policy: AdmissionPolicy = DEFAULT_POLICY
) -> tuple[dict[str, JsonValue], EventEnvelope]:
    """Strict parse and schema only (signed or not): for ``stave event validate``."""
    parsed = parse(data, policy.limits)
    typed = validate_event(parsed.value)
    assert isinstance(parsed.value, dict)  # validate_event accepts objects only
    return parsed.value, typed


def admit(
    data: bytes | str,
    policy: AdmissionPolicy = DEFAULT_POLICY,
    *,
    now: int | None = None,
    expected_id: str | None = None,
) -> Event:
    """Parse, validate and verify a signed event; return it or raise a :class:`VerificationError`.

    (1) size and strict JSON; (2) schema of the type, and the policy's types; (3) ``created_at``
    at most ``max_future_skew`` ahead of ``now`` (when given); (4) id = SHA-256 of the RFC 8785
    bytes without ``sig``, equal to ``expected_id`` when given; (5) a canonical low-S signature
    of the id recovering to ``author_pubkey``.
    """
    # (1)
    parsed = parse(data, policy.limits)
    value = parsed.value
    # (2)
    typed = validate_event(value)
    assert isinstance(value, dict)
    if typed.event_type not in policy.accepted_types:
        raise SchemaError("$.type", f"event type {typed.event_type.name} is not accepted here", "restricted")
    if typed.sig is UNSET:
        raise SignatureError("$.sig: the event is not signed")
    # (3)
    if now is not None and typed.created_at > now + policy.max_future_skew:
        raise VerificationError(
            f"$.created_at: {typed.created_at} is {typed.created_at - now} s in the future; "
            f"at most {policy.max_future_skew} s of clock skew is accepted"
        )
    # (4)
    unsigned_bytes = _unsigned_from_signed(parsed.canonical, value) if parsed.canonical else None
    if unsigned_bytes is None:
        unsigned = {key: item for key, item in value.items() if key != "sig"}
        unsigned_bytes = canonicalize(unsigned, sorted_is_canonical=parsed.sorted_is_canonical)
    digest = hashlib.sha256(unsigned_bytes).digest()
    event_id = digest.hex()
    if expected_id is not None and event_id != expected_id:
        raise DigestMismatchError(f"content hashes to {event_id}, expected {expected_id}")
    # (5)
    public_key = author_public_key(typed.author_pubkey)
    try:
        signature = Signature.from_string(typed.sig)
        signature.verify(digest, public_key)
    except (KeyFormatError, SignatureError) as exc:
        raise SignatureError(f"$.sig: {exc}") from None
    return Event(value, event_id, unsigned_bytes, typed, parsed.sorted_is_canonical, parsed.canonical)


_ENVELOPE_KEYS = frozenset({"v", "type", "author_pubkey", "created_at", "parents", "body", "proofs", "sig"})


def _unsigned_from_signed(signed: bytes, value: dict[str, JsonValue]) -> bytes | None:
    """Cut the ``sig`` member out of the signed event's canonical bytes, if that is exact.

    In RFC 8785 form the top-level members are sorted, so when the event has only envelope
    fields (the keys after ``sig`` are then ``type`` and ``v``), the bytes end in exactly
    ``"sig":S,"type":T,"v":V}`` and removing ``"sig":S,`` yields the unsigned form without
    serialising the body a second time. Returns None when that shape does not hold. Only
    called after schema validation, so ``sig`` and ``type`` are ASCII strings and ``v`` is 1.
    """
    if not value.keys() <= _ENVELOPE_KEYS:
        return None
    sig_member = b'"sig":' + orjson.dumps(value["sig"]) + b","
    rest = b'"type":' + orjson.dumps(value["type"]) + b',"v":1}'
    if not signed.endswith(sig_member + rest):
        return None
    return signed[: len(signed) - len(sig_member) - len(rest)] + rest
