"""The catalogue of hostile requests: every one the server must refuse, with its expected answer.

One entry per request: what is sent (method, raw target, headers, body or a body builder, how it
is signed), what must come back (status, the problem+json ``reason`` prefix, a fragment of the
``detail``) and why. ``test_catalogue.py`` sends each over real HTTP to one real ``stave serve``
and also checks that the request left no trace in the store or the log. ``docs/hostile-input.md``
renders this list as a table; a test keeps the two in step.

The server runs with the limits in ``SERVER_ENV`` (small batches and media so the limits are
cheap to reach, one credential may burst ``BURST`` requests) and the default event limits
(1 MiB, depth 64, 300 s of clock skew).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from stave.event import Event, PrivateKey, sign_event
from tests.store.events import KEY, event

MAX_EVENT_BYTES = 1 << 20  # the default [event] max_bytes
MAX_BATCH = 8
MAX_BATCH_BYTES = 256 << 10
MAX_MEDIA_BYTES = 64 << 10
BURST = 8

SERVER_ENV = {
    "STAVE_SERVER_MAX_BATCH": str(MAX_BATCH),
    "STAVE_SERVER_MAX_BATCH_BYTES": str(MAX_BATCH_BYTES),
    "STAVE_SERVER_MAX_MEDIA_BYTES": str(MAX_MEDIA_BYTES),
    "STAVE_AUTH_DIFFICULTY": "8",
    # An address refills at 1000 requests/s (a sequential client never runs dry); a credential
    # at one request every 5 s, so BURST + 1 quick requests with one credential are a flood.
    "STAVE_AUTH_RATE_PER_ADDRESS": "1000",
    "STAVE_AUTH_RATE_PER_CREDENTIAL": "0.2",
    "STAVE_AUTH_BURST": str(BURST),
    "STAVE_ANCHOR_INTERVAL": "3600",
}

#: The valid event stored before the catalogue runs (and the base of some hostile bodies).
CONTROL = 7_700_000
JSON = {"content-type": "application/json"}
NDJSON = {"content-type": "application/x-ndjson"}
OCTETS = {"content-type": "application/octet-stream"}
OTHER_KEY = PrivateKey(hashlib.sha256(b"stave hostile input: another author").digest())
UNKNOWN_ID = hashlib.sha256(b"stave hostile input: an event nobody submitted").hexdigest()


class Kit(Protocol):
    """What a body builder may use: the live server's challenge endpoint, for proof-of-work entries."""

    def post_json(self, path: str, body: object) -> tuple[int, object]: ...


Body = bytes | Callable[[Kit], bytes]


@dataclass(frozen=True)
class Hostile:
    """One hostile request and the answer it must get.

    ``auth`` says how the request is signed: ``none`` (no credential), ``app``/``relay``/``admin``
    (a valid credential of that kind, issued with the server's issuer key, and a valid request
    signature), or one of the broken forms in ``AUTH_FORMS``. ``sends`` > 1 sends the request
    again (``replay``: the very same headers; ``flood``: the same credential, fresh signatures);
    every answer must be a 4xx and the last one is checked. ``status`` 207 is a batch answered
    per event: the failed events must carry ``reason`` and the others be duplicates.
    """

    name: str
    method: str
    target: str
    status: int
    reason: str
    why: str
    body: Body = b""
    headers: Mapping[str, str] = field(default_factory=lambda: dict(JSON))
    auth: str = "app"
    detail: str = ""
    sends: int = 1


AUTH_FORMS = {
    "none": "no Authorization header",
    "app": "a valid app credential and request signature",
    "relay": "a valid relay credential and request signature",
    "admin": "a valid admin credential and request signature",
    "expired": "an app credential that expired 13 hours ago",
    "not-yet-valid": "an app credential issued an hour from now",
    "other-issuer": "an admin credential signed by a key the server does not trust",
    "tampered": "an app credential whose claims were edited to kind admin, issuer signature kept",
    "revoked": "a relay credential whose relay an admin revoked",
    "stolen": "a valid token, the request signed by another key than its holder's",
    "other-body": "a request signature over a different body",
    "other-path": "a request signature over a different target",
    "stale": "a request signature made an hour ago",
    "garbled-signature": "a Stave-Signature header that is not t=…,n=…,s=…",
    "bearer": "a valid credential and signature, the Authorization scheme Bearer instead of Stave",
    "replay": "the same signed request sent twice",
    "flood": f"one credential, {BURST + 1} signed requests in quick succession",
}


# --- bodies ---------------------------------------------------------------------------------------


def control_event() -> Event:
    return event(CONTROL)


def _vote(number: int, **envelope: object) -> dict[str, object]:
    return {
        "v": 1,
        "type": "VOTE",
        "created_at": 1_700_000_000,
        "parents": [],
        "body": {"claim_id": hashlib.sha256(b"hostile %d" % number).hexdigest(), "vote": "yes"},
        **envelope,
    }


def _signed(number: int, key: PrivateKey = KEY, **envelope: object) -> bytes:
    return sign_event(_vote(number, **envelope), key).canonical_bytes()


def _fresh(number: int) -> bytes:
    """A valid event never submitted: if the server let it through, the trace check would see it."""
    return _signed(7_800_000 + number)


def _with_field(data: bytes, name: str, raw_value: bytes) -> bytes:
    """``data`` (a JSON object) with one more member spliced in as raw bytes, first."""
    return b'{"' + name.encode() + b'":' + raw_value + b"," + data[1:]


def _padded_to(size: int) -> bytes:
    """A valid signed event padded with whitespace to exactly ``size`` bytes."""
    data = _fresh(1)
    return data + b" " * (size - len(data))


def _claims_author_b_signed_by_a(kit: Kit) -> bytes:
    value = json.loads(_signed(3, KEY))
    value["author_pubkey"] = OTHER_KEY.public_key.to_string()
    return json.dumps(value).encode()


def _future(kit: Kit) -> bytes:
    return _signed(4, created_at=int(time.time()) + 3600)


def _unknown_parent(kit: Kit) -> bytes:
    return _signed(5, parents=[UNKNOWN_ID])


def _batch_lines(*lines: bytes) -> bytes:
    return b"\n".join(lines) + b"\n"


def _batch_array(*items: bytes) -> bytes:
    return b"[" + b",".join(items) + b"]"


def _replayed_pow(kit: Kit) -> bytes:
    """A proof-of-work answer already exchanged once for a credential (the first exchange is here)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from stave.auth import Challenge, solve

    status, issued = kit.post_json("/auth/challenge", None)
    assert status == 200, issued
    challenge = Challenge.from_json(issued)
    public_key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    body = {
        "challenge": challenge.to_json(),
        "public_key": base64.urlsafe_b64encode(public_key).decode().rstrip("="),
        "counter": solve(challenge, public_key),
    }
    status, answer = kit.post_json("/auth/credential", body)
    assert status == 201, answer
    return json.dumps(body).encode()


def _forged_pow(kit: Kit) -> bytes:
    status, issued = kit.post_json("/auth/challenge", None)
    assert status == 200, issued
    assert isinstance(issued, dict)
    issued["difficulty"] = 0  # the MAC covers the difficulty
    return json.dumps({"challenge": issued, "public_key": "A" * 43, "counter": 0}).encode()


def _relay_key() -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(b"stave hostile input: a relay").digest()).decode().rstrip("=")


# --- the catalogue -------------------------------------------------------------------------------

_EVENTS = "/events"
_BATCH = "/events:batch"
_ID_TRICKS = [
    ("dot-dot-slash, percent-encoded", "/events/..%2F..%2Fetc%2Fpasswd", 404, "not-found"),
    ("dot-dot-slash, lower-case percent", "/events/..%2f..%2f..%2fstave.db", 404, "not-found"),
    ("dot segments, percent-encoded dots", "/events/%2e%2e", 400, "invalid"),
    ("upper-case hex id", "/events/" + "AB" * 32, 400, "invalid"),
    ("percent-encoded upper-case hex", "/events/" + "%41%42" * 32, 400, "invalid"),
    ("non-hex id of the right length", "/events/" + "zz" * 32, 400, "invalid"),
    ("id one character short", "/events/" + "ab" * 31 + "a", 400, "invalid"),
    ("proof of an upper-case id", "/events/" + "AB" * 32 + "/proof", 400, "invalid"),
    ("media path traversal", "/media/..%2F..%2Fauth%2Fissuer.key", 404, "not-found"),
    ("media id, upper-case hex", "/media/" + "CD" * 32, 400, "invalid"),
    ("tile path traversal", "/log/tile/..%2F..%2Fstave.db", 400, "invalid"),
]

#: Targets holding a NUL byte; ``test_postgres.py`` sends them to a server on PostgreSQL as well.
NUL_TARGETS = [
    ("id with a NUL byte", "/events/%00" + "ab" * 31 + "a"),
    ("author filter with a NUL byte", "/events?author=%00"),
    ("type filter with a NUL byte", "/events?type=VOTE%00"),
    ("label with a NUL byte", "/labels/a%00b"),
]

CATALOGUE: list[Hostile] = [
    # --- sizes and shapes ----------------------------------------------------------------------
    Hostile(
        "body one byte over the event limit",
        "POST",
        _EVENTS,
        413,
        "invalid",
        "an event must fit one IPFS block; refused from Content-Length before it is read",
        _padded_to(MAX_EVENT_BYTES + 1),
        detail=f"limit is {MAX_EVENT_BYTES}",
    ),
    Hostile(
        "huge body (16 MiB)",
        "POST",
        _EVENTS,
        413,
        "invalid",
        "refused from Content-Length; the body is never buffered",
        b"[" * (16 << 20),
        detail="limit",
    ),
    Hostile(
        "chunked body over the limit (no Content-Length)",
        "POST",
        _EVENTS,
        413,
        "invalid",
        "counted while streaming and cut at the limit",
        b" " * (MAX_EVENT_BYTES + 4096),
        headers={**JSON, "transfer-encoding": "chunked"},
        detail="over the limit",
    ),
    Hostile(
        "deep nesting (100 000 levels)",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "depth is bounded (64) before a recursive parser sees it",
        b"[" * 100_000 + b"]" * 100_000,
        detail="deeper than 64",
    ),
    Hostile(
        "empty body",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "nothing is not JSON",
        b"",
        detail="[syntax]",
    ),
    Hostile(
        "trailing data after the event",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "one request, one JSON document",
        _fresh(2) + b"{}",
        detail="[trailing-data]",
    ),
    # --- strict JSON -----------------------------------------------------------------------------
    Hostile(
        "duplicate keys",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "two readers could see two different events",
        _with_field(_fresh(3), "type", b'"LIKE"'),
        detail="$.type: duplicate object key",
    ),
    Hostile(
        "integer beyond 2^53",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "I-JSON: not exactly representable in every reader",
        _with_field(_fresh(4), "x", b"9007199254740993"),
        detail="[integer-range]",
    ),
    Hostile(
        "integral float beyond 2^53 (1e16)",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "canonicalises to an integer literal beyond 2^53",
        _with_field(_fresh(5), "x", b"1e16"),
        detail="[integer-range]",
    ),
    Hostile(
        "NaN",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "not JSON",
        _with_field(_fresh(6), "x", b"NaN"),
        detail="[non-finite]",
    ),
    Hostile(
        "number overflowing to infinity",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "1e400 is no finite double",
        _with_field(_fresh(7), "x", b"1e400"),
        detail="[non-finite]",
    ),
    Hostile(
        "invalid UTF-8",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "JSON text is UTF-8",
        _with_field(_fresh(8), "x", b'"\xff\xfe"'),
        detail="[utf-8]",
    ),
    Hostile(
        "overlong UTF-8 ('/' as C0 AF)",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "overlong forms smuggle characters past byte-level filters",
        _with_field(_fresh(9), "x", b'"..\xc0\xaf.."'),
        detail="[utf-8]",
    ),
    Hostile(
        "UTF-8-encoded surrogate (CESU-8)",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "surrogates are not characters",
        _with_field(_fresh(10), "x", b'"\xed\xa0\x80"'),
        detail="[utf-8]",
    ),
    Hostile(
        "lone surrogate escape",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "cannot be encoded as UTF-8, so has no canonical form",
        _with_field(_fresh(11), "x", b'"\\udc00"'),
        detail="[lone-surrogate]",
    ),
    Hostile(
        "raw NUL byte in a string",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "control characters must be escaped",
        _with_field(_fresh(12), "x", b'"a\x00b"'),
        detail="control character",
    ),
    Hostile(
        "NUL byte before the document",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "not JSON whitespace",
        b"\x00" + _fresh(13),
        detail="[syntax]",
    ),
    Hostile(
        "byte-order mark",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "RFC 8259 §8.1: no BOM in JSON sent over a network",
        b"\xef\xbb\xbf" + _fresh(14),
        detail="[bom]",
    ),
    Hostile(
        "UTF-16 body declared by charset",
        "POST",
        _EVENTS,
        400,
        "invalid",
        "JSON is UTF-8 whatever the charset parameter says",
        _fresh(15).decode().encode("utf-16"),
        headers={"content-type": "application/json; charset=utf-16"},
        detail="[utf-8]",
    ),
    # --- content types and encodings ---------------------------------------------------------------
    Hostile(
        "text/plain",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "only application/json is an event",
        _fresh(16),
        headers={"content-type": "text/plain"},
        detail="content type",
    ),
    Hostile(
        "no content type",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "the client must say what it sends",
        _fresh(17),
        headers={},
        detail="got 'none'",
    ),
    Hostile(
        "form-encoded",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "a browser form cannot post an event",
        b"event=" + _fresh(18),
        headers={"content-type": "application/x-www-form-urlencoded"},
        detail="content type",
    ),
    Hostile(
        "JSON Lines to the single-event route",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "batches go to /events:batch",
        _fresh(19),
        headers=NDJSON,
        detail="content type",
    ),
    Hostile(
        "plain JSON labelled Content-Encoding: gzip",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "the server decodes no content coding; storing the body as sent would store what the label denies",
        _fresh(20),
        headers={**JSON, "content-encoding": "gzip"},
        detail="content encoding",
    ),
    Hostile(
        "gzip body (a decompression bomb must not be inflated)",
        "POST",
        _EVENTS,
        415,
        "invalid",
        "no content coding is decoded, so no bomb can go off",
        gzip.compress(b" " * (8 << 20) + _fresh(21)),
        headers={**JSON, "content-encoding": "gzip"},
        detail="content encoding",
    ),
    Hostile(
        "stacked content codings",
        "PUT",
        "/media",
        415,
        "invalid",
        "media is stored byte for byte; a coding label would misdescribe it",
        b"media bytes",
        headers={**OCTETS, "content-encoding": "identity, br"},
        detail="content encoding",
    ),
    Hostile(
        "oversized headers (48 KiB)",
        "GET",
        "/events",
        431,
        "invalid",
        "header blocks are bounded (32 KiB) like a proxy would bound them",
        headers={"x-padding": "a" * (48 << 10)},
        auth="none",
        detail="32768",
    ),
    # --- events that parse but break a rule -----------------------------------------------------------
    Hostile(
        "signed by key A, claims author B",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "the signature must recover the named author",
        _claims_author_b_signed_by_a,
        detail="signature does not match",
    ),
    Hostile(
        "unsigned event",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "every stored event is signed",
        json.dumps(_vote(22, author_pubkey=KEY.public_key.to_string())).encode(),
        detail="not signed",
    ),
    Hostile(
        "created_at an hour in the future",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "at most 300 s of clock skew",
        _future,
        detail="$.created_at",
    ),
    Hostile(
        "unknown parent",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "parents must already be in the log (or in the same batch)",
        _unknown_parent,
        detail="$.parents: unknown parent",
    ),
    Hostile(
        "unknown event type",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "the 14 types of the seeds only",
        json.dumps({**_vote(23), "type": "PLAY"}).encode(),
        detail="unknown event type",
    ),
    Hostile(
        "not an object",
        "POST",
        _EVENTS,
        422,
        "invalid",
        "an event is a JSON object",
        b"[]",
        detail="must be a JSON object",
    ),
    # --- batches ------------------------------------------------------------------------------------
    Hostile(
        "batch over the event limit",
        "POST",
        _BATCH,
        413,
        "invalid",
        f"at most {MAX_BATCH} events per batch",
        _batch_lines(*(_fresh(100 + i) for i in range(MAX_BATCH + 1))),
        headers=NDJSON,
        detail=f"batch limit is {MAX_BATCH}",
    ),
    Hostile(
        "batch over the event limit, as an array with a bad item",
        "POST",
        _BATCH,
        413,
        "invalid",
        "the count is checked before any item is parsed strictly or re-serialised (cheap refusals first)",
        _batch_array(*(_fresh(110 + i) for i in range(MAX_BATCH)), b'{"v":1,"v":1}'),
        detail=f"{MAX_BATCH + 1} events, the batch limit is {MAX_BATCH}",
    ),
    Hostile(
        "batch body over the byte limit",
        "POST",
        _BATCH,
        413,
        "invalid",
        f"at most {MAX_BATCH_BYTES} bytes per batch",
        b" " * (MAX_BATCH_BYTES + 1),
        headers=NDJSON,
        detail=f"limit is {MAX_BATCH_BYTES}",
    ),
    Hostile(
        "JSON Lines batch, one bad line",
        "POST",
        _BATCH,
        207,
        "invalid",
        "lines are independent documents: each is answered on its own, the good ones stored",
        lambda kit: _batch_lines(control_event().canonical_bytes(), b'{"v":1,"v":1}'),
        headers=NDJSON,
        detail="duplicate object key",
    ),
    Hostile(
        "JSON array batch, one item breaking strict JSON",
        "POST",
        _BATCH,
        400,
        "invalid",
        "an array is one document: strict JSON fails for the whole of it, nothing is stored",
        lambda kit: _batch_array(control_event().canonical_bytes(), _fresh(24), b'{"v":1,"v":1}'),
        detail="batch: $[2].v: duplicate object key",
    ),
    Hostile(
        "JSON array batch, one item failing its signature",
        "POST",
        _BATCH,
        207,
        "invalid",
        "well-formed items are admitted one by one: the bad one is refused, the others answered",
        lambda kit: _batch_array(control_event().canonical_bytes(), _claims_author_b_signed_by_a(kit)),
        detail="signature does not match",
    ),
    Hostile(
        "JSON array batch with an integer beyond 2^53",
        "POST",
        _BATCH,
        400,
        "invalid",
        "the array passes the strict parser as a whole before any item is admitted",
        lambda kit: _batch_array(_with_field(_fresh(25), "x", b"18446744073709551616")),
        detail="[integer-range]",
    ),
    Hostile(
        "empty batch",
        "POST",
        _BATCH,
        400,
        "invalid",
        "nothing to do is a client error",
        b"\n\n",
        headers=NDJSON,
        detail="no events",
    ),
    # --- credentials and request signatures ---------------------------------------------------------
    Hostile(
        "write without a credential",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "writes need a credential from proof of work",
        _fresh(30),
        auth="none",
        detail="Authorization",
    ),
    Hostile(
        "expired credential",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "app credentials live 12 hours",
        _fresh(31),
        auth="expired",
        detail="expired",
    ),
    Hostile(
        "credential not valid yet",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "issued_at in the future beyond the 30 s skew",
        _fresh(32),
        auth="not-yet-valid",
        detail="valid from",
    ),
    Hostile(
        "credential from an untrusted issuer",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "only this server's issuer key makes credentials",
        _fresh(33),
        auth="other-issuer",
        detail="not trusted",
    ),
    Hostile(
        "tampered credential (kind edited)",
        "PUT",
        "/admin/labels/hostile",
        401,
        "auth-required",
        "the issuer's signature covers every claim",
        b'{"fields": ["title"]}',
        auth="tampered",
        detail="does not verify",
    ),
    Hostile(
        "revoked relay credential",
        "POST",
        _EVENTS,
        403,
        "restricted",
        "revoking a relay revokes its key's credentials at once",
        _fresh(34),
        auth="revoked",
        detail="revoked",
    ),
    Hostile(
        "stolen token, signed by the thief's key",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "a token is useless without its holder's key",
        _fresh(35),
        auth="stolen",
        detail="request signature does not verify",
    ),
    Hostile(
        "request signature over another body",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "the signature covers the body's SHA-256",
        _fresh(36),
        auth="other-body",
        detail="request signature does not verify",
    ),
    Hostile(
        "request signature over another path",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "the signature covers the request target",
        _fresh(37),
        auth="other-path",
        detail="request signature does not verify",
    ),
    Hostile(
        "request signature an hour old",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "signed requests are fresh for ±60 s",
        _fresh(38),
        auth="stale",
        detail="from the server clock",
    ),
    Hostile(
        "garbled Stave-Signature header",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "one spelling only",
        _fresh(39),
        auth="garbled-signature",
        detail="Stave-Signature header must be",
    ),
    Hostile(
        "Authorization scheme Bearer",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "one scheme, so a token meant for stave is never taken for another system's",
        _fresh(40),
        auth="bearer",
        detail="must be 'Stave <token>'",
    ),
    Hostile(
        "media without a credential",
        "PUT",
        "/media",
        401,
        "auth-required",
        "uploads are writes",
        b"media bytes",
        headers=OCTETS,
        auth="none",
        detail="Authorization",
    ),
    Hostile(
        "media one byte over the limit",
        "PUT",
        "/media",
        413,
        "invalid",
        f"media is bounded ({MAX_MEDIA_BYTES} bytes here), counted while it streams in",
        b"m" * (MAX_MEDIA_BYTES + 1),
        headers=OCTETS,
        detail=f"over the limit of {MAX_MEDIA_BYTES}",
    ),
    Hostile(
        "media signature over another body",
        "PUT",
        "/media",
        401,
        "auth-required",
        "a streamed body is hashed as it arrives and the signature must cover that hash",
        b"media bytes",
        headers=OCTETS,
        auth="other-body",
        detail="request signature does not verify",
    ),
    Hostile(
        "replayed request nonce",
        "POST",
        _EVENTS,
        401,
        "auth-required",
        "each signed request is single use (the first send is refused for its body, 422)",
        b'{"v": 1}',
        auth="replay",
        detail="nonce already used",
        sends=2,
    ),
    Hostile(
        "replayed proof-of-work answer",
        "POST",
        "/auth/credential",
        401,
        "pow",
        "a solved challenge buys one credential",
        _replayed_pow,
        auth="none",
        detail="already used",
    ),
    Hostile(
        "forged proof-of-work challenge (difficulty lowered)",
        "POST",
        "/auth/credential",
        401,
        "pow",
        "the challenge's MAC covers its difficulty",
        _forged_pow,
        auth="none",
        detail="bad MAC",
    ),
    Hostile(
        "proof-of-work answer with duplicate keys",
        "POST",
        "/auth/credential",
        400,
        "invalid",
        "strict JSON for every JSON body, not only events: two readers, two answers",
        b'{"counter": 1, "counter": 2}',
        auth="none",
        detail="duplicate object key",
    ),
    Hostile(
        "flood past the per-credential rate limit",
        "POST",
        _EVENTS,
        429,
        "rate-limited",
        f"a credential may burst {BURST} requests (each refused here for its body, 422), then waits",
        b'{"v": 1}',
        auth="flood",
        detail="retry after",
        sends=BURST + 1,
    ),
    # --- administration without rights --------------------------------------------------------------
    Hostile(
        "admin route, no credential",
        "GET",
        "/admin/relays",
        401,
        "auth-required",
        "admin reads are signed too",
        auth="none",
        headers={},
        detail="Authorization",
    ),
    Hostile(
        "admin route with an app credential",
        "PUT",
        "/admin/labels/hostile",
        403,
        "restricted",
        "app credentials come from proof of work: anyone has one",
        b'{"fields": ["title"]}',
        detail="kind 'app' is not accepted",
    ),
    Hostile(
        "admin route with a relay credential",
        "POST",
        "/admin/relays",
        403,
        "restricted",
        "relays forward writes; they do not administer",
        json.dumps({"public_key": _relay_key(), "name": "hostile"}).encode(),
        auth="relay",
        detail="kind 'relay' is not accepted",
    ),
    Hostile(
        "approve a relay with an app credential",
        "POST",
        f"/admin/relays/{_relay_key()}/approve",
        403,
        "restricted",
        "approving relays is an admin's decision",
        headers={},
        detail="kind 'app' is not accepted",
    ),
    Hostile(
        "admin label configuration with duplicate keys",
        "PUT",
        "/admin/labels/hostile",
        400,
        "invalid",
        "an admin's configuration is strict JSON too (the stored version must be what was meant)",
        b'{"fields": ["title"], "fields": []}',
        auth="admin",
        detail="duplicate object key",
    ),
    # --- methods and queries ------------------------------------------------------------------------
    Hostile(
        "DELETE an event",
        "DELETE",
        "/events/" + UNKNOWN_ID,
        405,
        "invalid",
        "the log is append-only: no route deletes or replaces",
        headers={},
        auth="none",
        detail="Method Not Allowed",
    ),
    Hostile(
        "cursor beyond a 64-bit integer",
        "GET",
        "/events?after_seq=9223372036854775808",
        400,
        "invalid",
        "a sequence number is a SQL BIGINT",
        headers={},
        auth="none",
        detail="after_seq",
    ),
    Hostile(
        "page size over 1000",
        "GET",
        "/events?limit=1000000",
        400,
        "invalid",
        "pages are bounded",
        headers={},
        auth="none",
        detail="limit",
    ),
    Hostile(
        "unknown type filter",
        "GET",
        "/events?type=PLAY",
        400,
        "invalid",
        "the 14 types only",
        headers={},
        auth="none",
        detail="unknown event type",
    ),
    # --- control characters in the target (PostgreSQL cannot compare text holding NUL) -------------------
    *(
        Hostile(
            name,
            "GET",
            target,
            400,
            "invalid",
            "no route takes control characters; on PostgreSQL a NUL in a compared string was a 500",
            headers={},
            auth="none",
            detail="control character 0x00",
        )
        for name, target in NUL_TARGETS
    ),
    # --- path tricks in ids ---------------------------------------------------------------------------
    *(
        Hostile(
            name,
            "GET",
            target,
            status,
            reason,
            "tile paths are parsed strictly (C2SP tlog-tiles); nothing else reaches the log"
            if target.startswith("/log/")
            else "ids are exactly 64 lowercase hex characters; nothing else reaches the store",
            headers={},
            auth="none",
            detail="64 lowercase hex" if status == 400 and "tile" not in target else "",
        )
        for name, target, status, reason in _ID_TRICKS
    ),
]


def names() -> list[str]:
    return [entry.name for entry in CATALOGUE]


def markdown_table() -> str:
    """The catalogue as the table in ``docs/hostile-input.md`` (a test keeps the two equal).

    Regenerate with ``python -c "from tests.hostile.catalogue import markdown_table; print(markdown_table())"``.
    """

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| Request | Sent | Expected answer | Why |", "| --- | --- | --- | --- |"]
    for entry in CATALOGUE:
        target = entry.target if len(entry.target) <= 44 else entry.target[:41] + "…"
        auth = {"none": "anonymous", "app": "app credential"}.get(entry.auth, entry.auth)
        sent = f"`{entry.method} {cell(target)}`, {cell(auth)}" + (f", ×{entry.sends}" if entry.sends > 1 else "")
        if entry.status == 207:
            answer = f"207 per event: the bad one `{entry.reason}:` “{cell(entry.detail)}”, the rest duplicates"
        else:
            answer = f"{entry.status} `{entry.reason}:`" + (f" “{cell(entry.detail)}”" if entry.detail else "")
        rows.append(f"| {cell(entry.name)} | {sent} | {answer} | {cell(entry.why)} |")
    return "\n".join(rows)
