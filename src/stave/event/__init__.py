"""The event core: strict JSON, RFC 8785, EOS/Antelope K1 keys, schemas and admission.

Pure: nothing in this package touches the disk, the network, the clock or the environment.
"""

from stave.event.admission import DEFAULT_POLICY, AdmissionPolicy, admit, check_event
from stave.event.envelope import Event, author_public_key, event_id, sign_event, unsigned_canonical
from stave.event.keys import PrivateKey, PublicKey, Signature
from stave.event.schema import EventEnvelope, validate_event
from stave.event.strictjson import DEFAULT_LIMITS, JsonLimits, JsonValue, ParsedJson, canonicalize, loads, parse
from stave.event.types import EventType

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_POLICY",
    "AdmissionPolicy",
    "Event",
    "EventEnvelope",
    "EventType",
    "JsonLimits",
    "JsonValue",
    "ParsedJson",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "admit",
    "author_public_key",
    "canonicalize",
    "check_event",
    "event_id",
    "loads",
    "parse",
    "sign_event",
    "unsigned_canonical",
    "validate_event",
]
