"""Ed25519-signed credentials and per-request proof of possession. Pure apart from the stores.

Kinds and default lifetimes (configurable per :class:`Issuer`): ``app`` (12 hours: a client that
solved a proof-of-work challenge), ``relay`` (7 days: a relay forwarding to the server),
``admin`` (90 days: the admin app).

Token
-----
::

    stave-cred-v1.<payload>.<signature>

- ``payload`` = base64url, unpadded (RFC 4648 §5), of the claims as RFC 8785 canonical JSON;
- ``signature`` = base64url, unpadded, of the 64-byte Ed25519 signature by the issuer key of the
  ASCII bytes ``stave-cred-v1.<payload>`` (the token up to its second dot). Signing the version
  prefix with the payload keeps these signatures from being valid anywhere else.

Claims (all required but ``scope``; no others allowed)::

    {"expires_at": 1758433900, "id": "<base64url, 16 random bytes>", "issued_at": 1758390700,
     "issuer": "<key id>", "kind": "app", "scope": ["events:write"],
     "subject_public_key": "<base64url, the holder's 32-byte Ed25519 key>", "v": 1}

- times are integer Unix seconds; ``id`` names the credential (revocation, logs, rate limits);
- ``issuer`` is the key ID, base64url of the first 8 bytes of SHA-256(issuer public key), so
  verifiers can hold several issuer keys during a rotation;
- ``scope``, when present, lists what the credential may do (a route's scope must be in it);
  when absent the credential may do whatever its kind may.

A token has exactly one spelling: the verifier refuses base64url that is padded or has stray
bits, and a payload that is not byte-for-byte canonical JSON.

Request signature (proof of possession)
---------------------------------------
A token alone is useless: every request is also signed by the holder's key. Headers::

    Authorization: Stave <token>
    Stave-Signature: t=<unix seconds>,n=<nonce>,s=<base64url signature>

exactly in that form: ``t`` a decimal integer, ``n`` 16 to 64 base64url characters chosen at
random by the client (16 random bytes recommended), ``s`` the unpadded base64url Ed25519
signature (86 characters) by the key in the token's ``subject_public_key`` of these UTF-8 bytes,
lines joined by a single LF with no trailing newline::

    stave-request-v1
    <METHOD, upper case>
    <request target as sent, still percent-encoded: path and query, e.g. /v1/events?after=10>
    <lowercase hex SHA-256 of the body; of the empty string when there is none>
    <t>
    <n>
    <credential id>

The credential id ties the signature to one token of the holder. The server refuses a request
whose ``t`` is more than ``window`` seconds (default 60) from its clock, and one whose nonce the
same key already used within the window (a shared :class:`~stave.auth.spent.SpentStore`).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stave.auth.encoding import b64url_decode, b64url_encode
from stave.auth.errors import AccessDenied, CredentialError
from stave.auth.spent import MemorySpentStore, SpentStore
from stave.errors import ConfigError, JSONError
from stave.event.strictjson import JsonLimits, JsonValue, canonicalize, loads

__all__ = [
    "AUTH_SCHEME",
    "DEFAULT_LIFETIMES",
    "SIGNATURE_HEADER",
    "TOKEN_PREFIX",
    "Credential",
    "CredentialVerifier",
    "Issuer",
    "Kind",
    "MemoryRevocationStore",
    "RevocationStore",
    "issuer_key_id",
    "read_token_unverified",
    "request_message",
    "sign_request",
]

TOKEN_PREFIX: Final = "stave-cred-v1"  # noqa: S105 - a format name, not a secret
AUTH_SCHEME: Final = "Stave"
SIGNATURE_HEADER: Final = "Stave-Signature"
REQUEST_DOMAIN: Final = "stave-request-v1"
MAX_TOKEN_LENGTH: Final = 4096
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
ID_SIZE: Final = 16
MAX_SCOPES: Final = 32

_CLAIMS: Final = frozenset({"v", "kind", "subject_public_key", "issued_at", "expires_at", "id", "issuer", "scope"})
_PAYLOAD_LIMITS: Final = JsonLimits(max_bytes=MAX_TOKEN_LENGTH, max_depth=2)
_SCOPE = re.compile(r"[A-Za-z0-9:._/-]{1,64}\Z")
_METHOD = re.compile(r"[A-Z]{1,16}\Z")
_TARGET = re.compile(r"/[\x21-\x7e]*\Z")  # visible ASCII: what an HTTP request target may hold
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}\Z")
_SIGNATURE_VALUE = re.compile(r"t=(0|[1-9][0-9]{0,11}),n=([A-Za-z0-9_-]{16,64}),s=([A-Za-z0-9_-]{86})\Z")
_RAW = serialization.Encoding.Raw
_RAW_PUBLIC = serialization.PublicFormat.Raw


class Kind(StrEnum):
    APP = "app"
    RELAY = "relay"
    ADMIN = "admin"


_KINDS: Final = frozenset(kind.value for kind in Kind)

DEFAULT_LIFETIMES: Final[Mapping[Kind, float]] = {
    Kind.APP: 12 * 3600.0,
    Kind.RELAY: 7 * 86400.0,
    Kind.ADMIN: 90 * 86400.0,
}


def issuer_key_id(public_key: bytes) -> str:
    """base64url(SHA-256(public key)[:8]): the ``issuer`` claim."""
    return b64url_encode(hashlib.sha256(public_key).digest()[:8])


@dataclass(frozen=True, slots=True)
class Credential:
    """The claims of a credential and the token they were read from or issued as."""

    kind: Kind
    subject_public_key: bytes
    issued_at: int
    expires_at: int
    id: str
    issuer: str
    scope: tuple[str, ...] | None
    token: str = field(repr=False)  # kept out of logs: half of what a request needs

    @property
    def subject(self) -> str:
        """The holder's key in base64url, as in the claims."""
        return b64url_encode(self.subject_public_key)

    def allows(self, scope: str | None) -> bool:
        """Whether a route needing ``scope`` (None: no particular scope) is within this credential."""
        return scope is None or self.scope is None or scope in self.scope

    def claims(self) -> dict[str, JsonValue]:
        claims: dict[str, JsonValue] = {
            "v": 1,
            "kind": self.kind.value,
            "subject_public_key": self.subject,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "id": self.id,
            "issuer": self.issuer,
        }
        if self.scope is not None:
            claims["scope"] = list(self.scope)
        return claims


def _kind(value: Kind | str) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise ConfigError(f"unknown credential kind {value!r}; expected one of app, relay, admin") from None


def _private_key(key: bytes | Ed25519PrivateKey) -> Ed25519PrivateKey:
    if isinstance(key, Ed25519PrivateKey):
        return key
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError(f"an Ed25519 private key (seed) is {KEY_SIZE} bytes")
    return Ed25519PrivateKey.from_private_bytes(key)


def _check_subject(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != KEY_SIZE:
        raise ValueError(f"an Ed25519 public key is {KEY_SIZE} bytes")


class Issuer:
    """Issues credentials with the server's Ed25519 key (a 32-byte seed or a key object).

    ``lifetimes`` overrides the default lifetime (seconds) of any kind; it is also the longest
    lifetime ``issue`` accepts for that kind.
    """

    def __init__(
        self,
        private_key: bytes | Ed25519PrivateKey,
        *,
        lifetimes: Mapping[Kind | str, float] | None = None,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._key = _private_key(private_key)
        self.public_key = self._key.public_key().public_bytes(_RAW, _RAW_PUBLIC)
        self.key_id = issuer_key_id(self.public_key)
        self.lifetimes: dict[Kind, float] = dict(DEFAULT_LIFETIMES)
        for kind, seconds in (lifetimes or {}).items():
            if not (math.isfinite(seconds) and seconds >= 1):
                raise ConfigError(f"lifetime of {kind} credentials must be at least 1 second, got {seconds!r}")
            self.lifetimes[_kind(kind)] = seconds
        self._randbytes = randbytes

    @classmethod
    def generate(cls, *, lifetimes: Mapping[Kind | str, float] | None = None) -> Issuer:
        """An issuer with a new key (for tests and first start; persist the seed to keep tokens valid)."""
        return cls(Ed25519PrivateKey.generate(), lifetimes=lifetimes)

    def issue(
        self,
        kind: Kind | str,
        subject_public_key: bytes,
        now: float,
        *,
        scope: Iterable[str] | None = None,
        lifetime: float | None = None,
    ) -> Credential:
        """A credential for ``subject_public_key``, valid from ``now`` for the kind's lifetime
        (or the shorter ``lifetime``)."""
        kind = _kind(kind)
        _check_subject(subject_public_key)
        longest = self.lifetimes[kind]
        lifetime = longest if lifetime is None else lifetime
        if not (math.isfinite(lifetime) and 1 <= lifetime <= longest):
            raise ValueError(f"lifetime of a {kind} credential must be 1 to {longest:g} s, got {lifetime!r}")
        scopes = None if scope is None else tuple(scope)
        if scopes is not None:
            _check_scopes(scopes, ValueError)
        issued_at = math.floor(now)
        credential = Credential(
            kind=kind,
            subject_public_key=subject_public_key,
            issued_at=issued_at,
            expires_at=math.floor(issued_at + lifetime),
            id=b64url_encode(self._randbytes(ID_SIZE)),
            issuer=self.key_id,
            scope=scopes,
            token="",
        )
        signed = f"{TOKEN_PREFIX}.{b64url_encode(canonicalize(credential.claims()))}"
        token = f"{signed}.{b64url_encode(self._key.sign(signed.encode('ascii')))}"
        return replace(credential, token=token)

    def __repr__(self) -> str:  # never the key
        return f"Issuer(key_id={self.key_id!r})"


def _check_scopes(scopes: tuple[str, ...], error: Callable[[str], Exception]) -> None:
    if len(scopes) > MAX_SCOPES or len(set(scopes)) != len(scopes):
        raise error(f"scope must list at most {MAX_SCOPES} distinct names")
    for name in scopes:
        if not isinstance(name, str) or not _SCOPE.match(name):
            raise error(f"scope name {name!r} must be 1 to 64 of A-Z a-z 0-9 : . _ / -")


# --- reading tokens ------------------------------------------------------------------------------


def _split_token(token: str) -> tuple[bytes, bytes, bytes]:
    """(signed bytes, payload JSON bytes, signature) of a token, checking only its syntax."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise CredentialError("malformed", f"a credential token is a string of at most {MAX_TOKEN_LENGTH} characters")
    parts = token.split(".")
    if len(parts) != 3:
        raise CredentialError("malformed", f"a credential token is '{TOKEN_PREFIX}.<payload>.<signature>'")
    if parts[0] != TOKEN_PREFIX:
        if parts[0].startswith("stave-cred-"):
            raise CredentialError("unsupported-version", f"token version {parts[0]!r} is not {TOKEN_PREFIX!r}")
        raise CredentialError("malformed", f"a credential token starts with '{TOKEN_PREFIX}.'")
    payload = b64url_decode(parts[1], "token payload", CredentialError)
    signature = b64url_decode(parts[2], "token signature", CredentialError, size=SIGNATURE_SIZE)
    return f"{parts[0]}.{parts[1]}".encode("ascii"), payload, signature


def _load_claims(payload: bytes) -> dict[str, JsonValue]:
    """The payload as a strict JSON object; enough to find its issuer, nothing checked yet."""
    try:
        claims = loads(payload, _PAYLOAD_LIMITS)
    except JSONError as exc:
        raise CredentialError("malformed", f"token payload is not valid JSON: {exc}") from None
    if not isinstance(claims, dict):
        raise CredentialError("malformed", "token payload must be a JSON object")
    return claims


def _parse_claims(claims: dict[str, JsonValue], payload: bytes, token: str) -> Credential:
    """The credential in ``claims``: canonical JSON with exactly the v1 claims, well-typed."""
    version = claims.get("v")
    if type(version) is not int or version != 1:
        raise CredentialError("unsupported-version", f"credential version {version!r} is not 1")
    if canonicalize(claims) != payload:
        raise CredentialError("malformed", "token payload is not in RFC 8785 canonical form")
    missing = (_CLAIMS - {"scope"}) - claims.keys()
    extra = claims.keys() - _CLAIMS
    if missing or extra:
        raise CredentialError("malformed", f"token claims: missing {sorted(missing)}, unexpected {sorted(extra)}")
    kind, subject, cid, issuer = claims["kind"], claims["subject_public_key"], claims["id"], claims["issuer"]
    issued_at, expires_at, scope = claims["issued_at"], claims["expires_at"], claims.get("scope")
    if not (isinstance(kind, str) and kind in _KINDS):
        raise CredentialError("malformed", f"unknown credential kind {kind!r}")
    if not (isinstance(subject, str) and isinstance(cid, str) and isinstance(issuer, str)):
        raise CredentialError("malformed", "subject_public_key, id and issuer must be strings")
    if not (_is_time(issued_at) and _is_time(expires_at)):
        raise CredentialError("malformed", "issued_at and expires_at must be non-negative integers")
    scopes: tuple[str, ...] | None = None
    if scope is not None:
        if not isinstance(scope, list) or not all(isinstance(name, str) for name in scope):
            raise CredentialError("malformed", "scope must be a list of strings")
        scopes = tuple(str(name) for name in scope)
        _check_scopes(scopes, lambda detail: CredentialError("malformed", detail))
    assert isinstance(issued_at, int)  # _is_time said so; mypy cannot see it
    assert isinstance(expires_at, int)
    return Credential(
        kind=Kind(kind),
        subject_public_key=b64url_decode(subject, "subject_public_key", CredentialError, size=KEY_SIZE),
        issued_at=issued_at,
        expires_at=expires_at,
        id=_check_id(cid),
        issuer=issuer,
        scope=scopes,
        token=token,
    )


def _is_time(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53


def _check_id(cid: str) -> str:
    b64url_decode(cid, "credential id", CredentialError, size=ID_SIZE)
    return cid


def read_token_unverified(token: str) -> Credential:
    """The claims of ``token`` WITHOUT checking its signature, times or revocation.

    For clients (to read their own credential's id and expiry) and for logs; never for access.
    """
    _, payload, _ = _split_token(token)
    return _parse_claims(_load_claims(payload), payload, token)


# --- request signatures ------------------------------------------------------------------------


def request_message(
    method: str, target: str, body_sha256: bytes, timestamp: int, nonce: str, credential_id: str
) -> bytes:
    """The bytes a request signature covers (see the module docstring)."""
    method = method.upper()
    if not _METHOD.match(method):
        raise CredentialError("malformed", f"HTTP method {method!r} is not 1 to 16 letters")
    if not isinstance(target, str) or not _TARGET.match(target):
        raise CredentialError("malformed", "the request target must start with '/' and hold only visible ASCII")
    if len(body_sha256) != 32:
        raise ValueError(f"body_sha256 is a 32-byte digest, got {len(body_sha256)} bytes")
    lines = (REQUEST_DOMAIN, method, target, body_sha256.hex(), str(timestamp), nonce, credential_id)
    return "\n".join(lines).encode("ascii")


def sign_request(
    private_key: bytes | Ed25519PrivateKey,
    token: str,
    method: str,
    target: str,
    body: bytes,
    now: float,
    *,
    nonce: str | None = None,
) -> dict[str, str]:
    """The ``Authorization`` and ``Stave-Signature`` headers for one request (client side)."""
    credential = read_token_unverified(token)
    nonce = b64url_encode(secrets.token_bytes(16)) if nonce is None else nonce
    if not _NONCE.match(nonce):
        raise ValueError("a request nonce is 16 to 64 base64url characters")
    timestamp = math.floor(now)
    message = request_message(method, target, hashlib.sha256(body).digest(), timestamp, nonce, credential.id)
    signature = b64url_encode(_private_key(private_key).sign(message))
    return {"Authorization": f"{AUTH_SCHEME} {token}", SIGNATURE_HEADER: f"t={timestamp},n={nonce},s={signature}"}


# --- revocation ----------------------------------------------------------------------------------


class RevocationStore(ABC):
    """Revoked credential ids and subject keys. Subclasses implement ``_revoke`` and ``_any_revoked``.

    A revoked credential id need only be remembered until the credential expires (pass its
    ``expires_at`` plus the verifier's skew as ``until``); a subject key is revoked for good
    unless ``until`` says otherwise, and no credential naming it is accepted meanwhile.
    """

    def revoke_credential(self, credential_id: str, now: float, until: float | None = None) -> None:
        _check_id(credential_id)
        self._revoke(f"cred:{credential_id}", self._ttl(now, until), now)

    def revoke_subject(self, subject_public_key: bytes, now: float, until: float | None = None) -> None:
        _check_subject(subject_public_key)
        self._revoke(f"subject:{b64url_encode(subject_public_key)}", self._ttl(now, until), now)

    def is_revoked(self, credential: Credential, now: float) -> bool:
        """Whether the credential's id or its subject key is revoked (one lookup)."""
        return self._any_revoked((f"cred:{credential.id}", f"subject:{credential.subject}"), now)

    @staticmethod
    def _ttl(now: float, until: float | None) -> float | None:
        if until is None:
            return None
        if not until > now:
            raise ValueError(f"revocation must last past now: until {until!r} <= now {now!r}")
        return until - now

    @abstractmethod
    def _revoke(self, key: str, ttl: float | None, now: float) -> None:
        """Remember ``key`` for ``ttl`` seconds from ``now`` (None: for good)."""

    @abstractmethod
    def _any_revoked(self, keys: Sequence[str], now: float) -> bool: ...


class MemoryRevocationStore(RevocationStore):
    """A process-local revocation list (embedded server, tests). Thread-safe; expired entries pruned."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def _revoke(self, key: str, ttl: float | None, now: float) -> None:
        with self._lock:
            self._until = {k: t for k, t in self._until.items() if t > now}  # revocations are rare: O(n) is fine
            until = math.inf if ttl is None else now + ttl
            self._until[key] = max(until, self._until.get(key, until))

    def _any_revoked(self, keys: Sequence[str], now: float) -> bool:
        with self._lock:
            return any(self._until.get(key, -math.inf) > now for key in keys)


# --- verification ----------------------------------------------------------------------------


_K = TypeVar("_K")
_V = TypeVar("_V")
_CACHED: Final = 4096  # entries each verifier cache keeps


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """Keep ``value`` under ``key`` in a bounded cache (the oldest entry goes first); return it."""
    if len(cache) >= _CACHED:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


class CredentialVerifier:
    """Checks credentials and request signatures on every request.

    ``issuer_keys``: the Ed25519 public keys whose credentials are accepted (several during a
    rotation). ``skew``: seconds of clock difference tolerated on ``issued_at`` and
    ``expires_at``. ``window``: how far a request timestamp may be from ``now``. ``replay``:
    the nonce store, shared by every instance (in memory by default: one process only).
    """

    def __init__(
        self,
        issuer_keys: Iterable[bytes],
        revocation: RevocationStore,
        *,
        replay: SpentStore | None = None,
        skew: float = 30.0,
        window: float = 60.0,
    ) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in issuer_keys:
            _check_subject(key)
            self._keys[issuer_key_id(key)] = Ed25519PublicKey.from_public_bytes(key)
        if not self._keys:
            raise ConfigError("a credential verifier needs at least one issuer key")
        if not (0 <= skew <= 600 and 1 <= window <= 3600):
            raise ConfigError(f"skew must be 0 to 600 s and window 1 to 3600 s, got {skew!r} and {window!r}")
        self.revocation = revocation
        self.replay = replay if replay is not None else MemorySpentStore()
        self.skew = skew
        self.window = window
        self._verified: dict[str, Credential] = {}  # token -> its checked claims
        self._holder_keys: dict[bytes, Ed25519PublicKey] = {}  # parsed once: parsing costs a third of a verify

    def verify_token(
        self, token: str, now: float, *, kinds: Collection[Kind | str], scope: str | None = None
    ) -> Credential:
        """The credential in ``token`` if it may use a route accepting ``kinds`` (and needing
        ``scope``) at ``now``; raise ``CredentialError`` or ``AccessDenied`` otherwise.

        The token alone proves nothing about who sends it: requests go through
        :meth:`verify_request`, which adds the holder's signature.
        """
        credential = self._authentic(token, now, self._kinds(kinds), scope)
        self._check_revocation(credential, now)
        return credential

    def verify_request(
        self,
        *,
        authorization: str | None,
        signature: str | None,
        method: str,
        target: str,
        now: float,
        kinds: Collection[Kind | str],
        scope: str | None = None,
        body: bytes | None = None,
        body_sha256: bytes | None = None,
    ) -> Credential:
        """Authenticate a request from its ``Authorization`` and ``Stave-Signature`` header values.

        ``target`` is the request target as received, still percent-encoded, with its query
        (in ASGI: ``scope["raw_path"]``, then ``?`` and ``scope["query_string"]`` if not empty);
        pass the ``body`` (``b""`` when none) or, for a body streamed elsewhere, its
        ``body_sha256``. Returns the holder's credential.
        """
        allowed = self._kinds(kinds)
        if (body is None) == (body_sha256 is None):
            raise ValueError("pass exactly one of body and body_sha256")
        digest = hashlib.sha256(body).digest() if body is not None else body_sha256
        assert digest is not None
        # (1) A credential: "Stave <token>", scheme case-insensitive (RFC 9110 §11.1).
        if not authorization:
            raise CredentialError("missing", f"send 'Authorization: {AUTH_SCHEME} <token>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != AUTH_SCHEME.lower() or not token.strip():
            raise CredentialError("malformed", f"the Authorization header must be '{AUTH_SCHEME} <token>'")
        # (2) The token itself: signature, version, kind, times, scope.
        credential = self._authentic(token.strip(), now, allowed, scope)
        # (3) Proof of possession: a fresh signature by the holder's key over this very request.
        if not signature:
            raise CredentialError("missing", f"send '{SIGNATURE_HEADER}: t=<unix>,n=<nonce>,s=<signature>'")
        match = _SIGNATURE_VALUE.match(signature)
        if match is None:
            raise CredentialError("malformed", f"the {SIGNATURE_HEADER} header must be 't=<unix>,n=<nonce>,s=<sig>'")
        timestamp, nonce = int(match[1]), match[2]
        raw_signature = b64url_decode(match[3], "request signature", CredentialError, size=SIGNATURE_SIZE)
        if abs(now - timestamp) > self.window:
            raise CredentialError(
                "stale",
                f"request timestamp {timestamp} is {now - timestamp:+.0f} s from the server clock "
                f"(window ±{self.window:g} s); check the client's clock",
            )
        message = request_message(method, target, digest, timestamp, nonce, credential.id)
        try:
            self._holder_key(credential.subject_public_key).verify(raw_signature, message)
        except (InvalidSignature, ValueError):  # ValueError: subject bytes that are no curve point
            raise CredentialError(
                "bad-request-signature",
                "request signature does not verify with the credential's key (method, target, body, t, n)",
            ) from None
        # (4) Not revoked.
        self._check_revocation(credential, now)
        # (5) Single use, last: refused requests must not burn nonces. Keyed by the holder's key,
        # so the same signature cannot be replayed under another of its tokens either.
        if not self.replay.mark_spent(f"req:{credential.subject}:{nonce}", timestamp + self.window, now):
            raise CredentialError("replayed", "request nonce already used; sign each request with a new nonce")
        return credential

    def _holder_key(self, public_bytes: bytes) -> Ed25519PublicKey:
        key = self._holder_keys.get(public_bytes)
        if key is None:
            key = _remember(self._holder_keys, public_bytes, Ed25519PublicKey.from_public_bytes(public_bytes))
        return key

    def _kinds(self, kinds: Collection[Kind | str]) -> frozenset[Kind]:
        if isinstance(kinds, str):  # "app" is a collection of letters: take it as one kind
            kinds = (kinds,)
        allowed = frozenset(_kind(kind) for kind in kinds)
        if not allowed:
            raise ConfigError("a route must accept at least one credential kind")
        return allowed

    def _authentic(self, token: str, now: float, kinds: frozenset[Kind], scope: str | None) -> Credential:
        credential = self._verified.get(token)
        if credential is None:
            credential = _remember(self._verified, token, self._issued_by_us(token))
        return self._usable(credential, now, kinds, scope)

    def _issued_by_us(self, token: str) -> Credential:
        """Syntax and the issuer's signature (a pure function of the token, so cached)."""
        signed, payload, signature = _split_token(token)
        claims = _load_claims(payload)
        issuer = claims.get("issuer")
        key = self._keys.get(issuer) if isinstance(issuer, str) else None
        if key is None:
            raise CredentialError("unknown-issuer", f"credential issuer {issuer!r:.40} is not trusted here")
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            raise CredentialError("forged", "credential signature does not verify with its issuer's key") from None
        # Only now are the claims worth reading closely: they are the issuer's.
        return _parse_claims(claims, payload, token)

    def _usable(self, credential: Credential, now: float, kinds: frozenset[Kind], scope: str | None) -> Credential:
        # (2) Kind for the route.
        if credential.kind not in kinds:
            accepted = ", ".join(sorted(kinds))
            raise AccessDenied(
                "wrong-kind", f"credential kind {credential.kind.value!r} is not accepted here (accepted: {accepted})"
            )
        # (3) Validity period, with skew for clocks that disagree.
        if now + self.skew < credential.issued_at:
            raise CredentialError(
                "not-yet-valid",
                f"credential is valid from {credential.issued_at} (now {math.floor(now)}, skew {self.skew:g} s)",
            )
        if now - self.skew >= credential.expires_at:
            raise CredentialError(
                "expired",
                f"credential expired at {credential.expires_at} (now {math.floor(now)}, skew {self.skew:g} s); "
                "get a new one",
            )
        # (4) Scope.
        if not credential.allows(scope):
            raise AccessDenied("scope", f"credential scope {list(credential.scope or ())} does not include {scope!r}")
        return credential

    def _check_revocation(self, credential: Credential, now: float) -> None:
        if self.revocation.is_revoked(credential, now):
            raise AccessDenied("revoked", f"credential {credential.id} or its key is revoked")
