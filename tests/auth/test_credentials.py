"""Credentials: issued and verified per kind, refused when forged, altered, out of time, of the
wrong kind or revoked; requests signed by the holder, refused when replayed, altered, stale or
signed by anyone else."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stave.auth import (
    DEFAULT_LIFETIMES,
    AccessDenied,
    AuthError,
    Credential,
    CredentialError,
    CredentialVerifier,
    Issuer,
    Kind,
    MemoryRevocationStore,
    read_token_unverified,
    request_message,
    sign_request,
)
from stave.auth.credentials import issuer_key_id
from stave.auth.encoding import b64url_encode
from stave.errors import ConfigError, VerificationError
from stave.event.strictjson import canonicalize
from tests.auth.conftest import NOW, Backend

ISSUER_SEED = bytes(range(32))
HOLDER_SEED = bytes(range(32, 64))
HOLDER = Ed25519PrivateKey.from_private_bytes(HOLDER_SEED)
HOLDER_PUBLIC = HOLDER.public_key().public_bytes_raw()
STRANGER = Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96)))
BODY = b'{"v":1,"type":"LIKE"}'


def counter_ids() -> Callable[[int], bytes]:
    """Deterministic credential ids: 1, 2, 3, … as 16 bytes."""
    state = iter(range(1, 1 << 30))
    return lambda size: next(state).to_bytes(size, "big")


@pytest.fixture
def issuer() -> Issuer:
    return Issuer(ISSUER_SEED, randbytes=counter_ids())


@pytest.fixture
def verifier(issuer: Issuer, backend: Backend) -> CredentialVerifier:
    return CredentialVerifier([issuer.public_key], backend.revocation(), replay=backend.spent())


@pytest.fixture
def app(issuer: Issuer) -> Credential:
    return issuer.issue(Kind.APP, HOLDER_PUBLIC, NOW)


def refused(error: type[AuthError], code: str, call: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return str(caught.value)


def resign(issuer_seed: bytes, claims: dict[str, object], *, payload: bytes | None = None) -> str:
    """A token over ``claims`` (or raw ``payload`` bytes) signed by ``issuer_seed``: what an
    attacker holding a key, or a buggy issuer, could produce."""
    body = b64url_encode(payload if payload is not None else canonicalize(claims))
    signed = f"stave-cred-v1.{body}"
    signature = Ed25519PrivateKey.from_private_bytes(issuer_seed).sign(signed.encode())
    return f"{signed}.{b64url_encode(signature)}"


# --- issuing and verifying tokens --------------------------------------------------------------


@pytest.mark.parametrize("kind", list(Kind))
def test_issue_and_verify_each_kind(issuer: Issuer, verifier: CredentialVerifier, kind: Kind) -> None:
    credential = issuer.issue(kind, HOLDER_PUBLIC, NOW + 0.9)
    assert credential.issued_at == int(NOW)
    assert credential.expires_at - credential.issued_at == DEFAULT_LIFETIMES[kind]
    assert credential.issuer == issuer.key_id == issuer_key_id(issuer.public_key)
    assert verifier.verify_token(credential.token, NOW + 10, kinds=[kind]) == credential
    assert read_token_unverified(credential.token) == credential


def test_token_layout(issuer: Issuer) -> None:
    credential = issuer.issue("relay", HOLDER_PUBLIC, NOW, scope=["events:write", "media:write"])
    prefix, payload, signature = credential.token.split(".")
    assert prefix == "stave-cred-v1"
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert claims == (
        b'{"expires_at":1758994800,"id":"AAAAAAAAAAAAAAAAAAAAAQ","issued_at":1758390000,'
        b'"issuer":"' + issuer.key_id.encode() + b'","kind":"relay","scope":["events:write","media:write"],'
        b'"subject_public_key":"' + b64url_encode(HOLDER_PUBLIC).encode() + b'","v":1}'
    )
    Ed25519PrivateKey.from_private_bytes(ISSUER_SEED).public_key().verify(
        base64.urlsafe_b64decode(signature + "=="), f"{prefix}.{payload}".encode()
    )
    assert "=" not in credential.token
    assert credential.token not in repr(credential)  # tokens stay out of logs


def test_lifetimes_are_configurable_and_capped() -> None:
    issuer = Issuer(ISSUER_SEED, lifetimes={"app": 3600})
    assert issuer.issue("app", HOLDER_PUBLIC, NOW).expires_at == NOW + 3600
    assert issuer.issue("app", HOLDER_PUBLIC, NOW, lifetime=60).expires_at == NOW + 60
    with pytest.raises(ValueError, match="1 to 3600"):
        issuer.issue("app", HOLDER_PUBLIC, NOW, lifetime=7200)
    with pytest.raises(ConfigError, match="unknown credential kind"):
        Issuer(ISSUER_SEED, lifetimes={"root": 1})
    with pytest.raises(ConfigError, match="unknown credential kind"):
        issuer.issue("root", HOLDER_PUBLIC, NOW)


def test_expired_with_skew(verifier: CredentialVerifier, app: Credential) -> None:
    last_good = app.expires_at + verifier.skew - 0.001
    verifier.verify_token(app.token, last_good, kinds=["app"])
    message = refused(CredentialError, "expired", verifier.verify_token, app.token, last_good + 0.001, kinds=["app"])
    assert message.startswith(f"auth-required: credential expired at {app.expires_at}")


def test_not_yet_valid(issuer: Issuer, verifier: CredentialVerifier) -> None:
    future = issuer.issue("app", HOLDER_PUBLIC, NOW + 3600)
    verifier.verify_token(future.token, NOW + 3600 - verifier.skew, kinds=["app"])
    refused(CredentialError, "not-yet-valid", verifier.verify_token, future.token, NOW, kinds=["app"])


def test_forged_signature(app: Credential, verifier: CredentialVerifier, issuer: Issuer) -> None:
    claims = app.claims()
    # The claims signed by another key under our key id.
    refused(CredentialError, "forged", verifier.verify_token, resign(HOLDER_SEED, claims), NOW, kinds=["app"])
    # A token of an issuer this verifier does not trust.
    other = Issuer(HOLDER_SEED).issue("app", HOLDER_PUBLIC, NOW)
    refused(CredentialError, "unknown-issuer", verifier.verify_token, other.token, NOW, kinds=["app"])


def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return text[:index] + alphabet[alphabet.index(text[index]) ^ 1] + text[index + 1 :]


def _resign_payload(token: str, old: bytes, new: bytes) -> str:
    """``token`` with its payload edited and the original signature kept."""
    prefix, payload, signature = token.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert old in claims
    return f"{prefix}.{b64url_encode(claims.replace(old, new))}.{signature}"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        pytest.param(lambda t: _resign_payload(t, b'"expires_at":17', b'"expires_at":27'), "forged", id="later-expiry"),
        pytest.param(lambda t: _resign_payload(t, b'"kind":"app"', b'"kind":"admin"'), "forged", id="kind-upgraded"),
        pytest.param(lambda t: _resign_payload(t, b'"v":1}', b'"v":1,}'), "malformed", id="payload-not-json"),
        pytest.param(lambda t: _flip(t, len(t) - 10), "forged", id="signature-bit"),
        pytest.param(lambda t: _flip(t, len(t) - 1), "malformed", id="signature-stray-bits"),
        pytest.param(lambda t: t + "==", "malformed", id="padded"),
        pytest.param(lambda t: t.replace("-", "+").replace("_", "/") + "+/", "malformed", id="standard-alphabet"),
        pytest.param(lambda t: t[:-3], "malformed", id="truncated"),
        pytest.param(lambda t: t + ".x", "malformed", id="four-parts"),
        pytest.param(lambda t: t.replace("stave-cred-v1", "stave-cred-v2"), "unsupported-version", id="v2"),
        pytest.param(lambda t: t.replace("stave-cred-v1", "Bearer"), "malformed", id="other-prefix"),
        pytest.param(lambda t: t + "A" * 4096, "malformed", id="oversized"),
        pytest.param(lambda t: "", "malformed", id="empty"),
    ],
)
def test_tampered_token(verifier: CredentialVerifier, app: Credential, mutate: Callable[[str], str], code: str) -> None:
    refused(CredentialError, code, verifier.verify_token, mutate(app.token), NOW, kinds=["app"])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param(lambda c: {**c, "v": 2}, "unsupported-version", id="v2"),
        pytest.param(lambda c: {**c, "v": True}, "unsupported-version", id="v-true"),
        pytest.param(lambda c: {**c, "extra": 1}, "malformed", id="extra-claim"),
        pytest.param(lambda c: {k: v for k, v in c.items() if k != "id"}, "malformed", id="missing-id"),
        pytest.param(lambda c: {**c, "kind": "root"}, "malformed", id="unknown-kind"),
        pytest.param(lambda c: {**c, "expires_at": 1758433200.5}, "malformed", id="float-time"),
        pytest.param(lambda c: {**c, "scope": "events:write"}, "malformed", id="scope-string"),
        pytest.param(lambda c: {**c, "scope": ["a", "a"]}, "malformed", id="scope-repeated"),
        pytest.param(lambda c: {**c, "subject_public_key": "AAAA"}, "malformed", id="short-subject"),
    ],
)
def test_bad_claims_signed_by_the_issuer_are_refused(
    verifier: CredentialVerifier, app: Credential, change: Callable[[dict[str, object]], dict[str, object]], code: str
) -> None:
    token = resign(ISSUER_SEED, change(dict(app.claims())))
    refused(CredentialError, code, verifier.verify_token, token, NOW, kinds=["app"])


def test_payload_must_be_canonical(verifier: CredentialVerifier, app: Credential) -> None:
    canonical = canonicalize(app.claims())
    spaced = canonical.replace(b",", b", ")
    refused(
        CredentialError, "malformed", verifier.verify_token, resign(ISSUER_SEED, {}, payload=spaced), NOW, kinds=["app"]
    )
    duplicate = canonical[:-1] + b',"v":1}'
    refused(
        CredentialError,
        "malformed",
        verifier.verify_token,
        resign(ISSUER_SEED, {}, payload=duplicate),
        NOW,
        kinds=["app"],
    )


def test_wrong_kind_for_route(verifier: CredentialVerifier, app: Credential) -> None:
    message = refused(AccessDenied, "wrong-kind", verifier.verify_token, app.token, NOW, kinds=["relay", "admin"])
    assert message == "restricted: credential kind 'app' is not accepted here (accepted: admin, relay)"
    assert AccessDenied.http_status == 403
    verifier.verify_token(app.token, NOW, kinds="app")  # one kind as a plain string


def test_scope(issuer: Issuer, verifier: CredentialVerifier, app: Credential) -> None:
    scoped = issuer.issue("relay", HOLDER_PUBLIC, NOW, scope=["events:write"])
    verifier.verify_token(scoped.token, NOW, kinds=["relay"], scope="events:write")
    refused(AccessDenied, "scope", verifier.verify_token, scoped.token, NOW, kinds=["relay"], scope="admin:relays")
    verifier.verify_token(app.token, NOW, kinds=["app"], scope="admin:relays")  # no scope: the kind decides
    with pytest.raises(ValueError, match="scope name"):
        issuer.issue("relay", HOLDER_PUBLIC, NOW, scope=["has space"])


def test_revoked_by_id(issuer: Issuer, verifier: CredentialVerifier, app: Credential) -> None:
    sibling = issuer.issue("app", HOLDER_PUBLIC, NOW)
    verifier.revocation.revoke_credential(app.id, NOW, until=app.expires_at + verifier.skew)
    message = refused(AccessDenied, "revoked", verifier.verify_token, app.token, NOW + 1, kinds=["app"])
    assert message.startswith("restricted: ")
    verifier.verify_token(sibling.token, NOW + 1, kinds=["app"])  # the same holder's other credential


def test_revoked_by_subject(issuer: Issuer, verifier: CredentialVerifier, app: Credential) -> None:
    admin = issuer.issue("admin", HOLDER_PUBLIC, NOW)
    other = issuer.issue("app", STRANGER.public_key().public_bytes_raw(), NOW)
    verifier.revocation.revoke_subject(HOLDER_PUBLIC, NOW)
    refused(AccessDenied, "revoked", verifier.verify_token, app.token, NOW + 1, kinds=["app"])
    refused(AccessDenied, "revoked", verifier.verify_token, admin.token, NOW + 1, kinds=["admin"])
    verifier.verify_token(other.token, NOW + 1, kinds=["app"])


def test_revocation_by_id_ends_when_asked(issuer: Issuer, app: Credential) -> None:
    revocation = MemoryRevocationStore()
    verifier = CredentialVerifier([issuer.public_key], revocation)
    revocation.revoke_credential(app.id, NOW, until=NOW + 100)
    refused(AccessDenied, "revoked", verifier.verify_token, app.token, NOW + 99, kinds=["app"])
    verifier.verify_token(app.token, NOW + 100, kinds=["app"])
    revocation.revoke_subject(HOLDER_PUBLIC, NOW)  # for good ...
    revocation.revoke_subject(HOLDER_PUBLIC, NOW, until=NOW + 1)  # ... a shorter one does not end it
    refused(AccessDenied, "revoked", verifier.verify_token, app.token, NOW + 1000, kinds=["app"])
    with pytest.raises(ValueError, match="past now"):
        revocation.revoke_credential(app.id, NOW, until=NOW)


def test_key_rotation(issuer: Issuer, app: Credential) -> None:
    new_issuer = Issuer.generate()
    verifier = CredentialVerifier([issuer.public_key, new_issuer.public_key], MemoryRevocationStore())
    verifier.verify_token(app.token, NOW, kinds=["app"])
    verifier.verify_token(new_issuer.issue("app", HOLDER_PUBLIC, NOW).token, NOW, kinds=["app"])


def test_verifier_configuration(issuer: Issuer) -> None:
    with pytest.raises(ConfigError, match="at least one issuer key"):
        CredentialVerifier([], MemoryRevocationStore())
    verifier = CredentialVerifier([issuer.public_key], MemoryRevocationStore())
    with pytest.raises(ConfigError, match="at least one credential kind"):
        verifier.verify_token("x", NOW, kinds=[])
    with pytest.raises(ConfigError, match="unknown credential kind"):
        verifier.verify_token("x", NOW, kinds=["root"])


def test_error_tree() -> None:
    for error in (CredentialError, AccessDenied):
        assert issubclass(error, VerificationError)
        assert issubclass(error, AuthError)
    assert CredentialError("missing", "x").http_status == 401
    assert str(CredentialError("missing", "send it")) == "auth-required: send it"


# --- proof of possession ----------------------------------------------------------------------


def signed(
    credential: Credential,
    method: str = "POST",
    target: str = "/v1/events",
    body: bytes = BODY,
    *,
    key: Ed25519PrivateKey = HOLDER,
    now: float = NOW,
    nonce: str | None = None,
) -> dict[str, str | None]:
    return dict(sign_request(key, credential.token, method, target, body, now, nonce=nonce))


def check(
    verifier: CredentialVerifier,
    headers: dict[str, str | None],
    *,
    method: str = "POST",
    target: str = "/v1/events",
    body: bytes = BODY,
    now: float = NOW + 1,
) -> Credential:
    return verifier.verify_request(
        authorization=headers.get("Authorization"),
        signature=headers.get("Stave-Signature"),
        method=method,
        target=target,
        body=body,
        now=now,
        kinds=["app"],
    )


def test_signed_request_is_accepted(verifier: CredentialVerifier, app: Credential) -> None:
    headers = signed(app)
    assert headers["Authorization"] == f"Stave {app.token}"
    assert check(verifier, dict(headers)) == app
    # The framework may hand over a digest of a body it streamed elsewhere instead of the body.
    second = signed(app)
    assert (
        verifier.verify_request(
            authorization=second["Authorization"],
            signature=second["Stave-Signature"],
            method="POST",
            target="/v1/events",
            body_sha256=hashlib.sha256(BODY).digest(),
            now=NOW,
            kinds=["app"],
        )
        == app
    )


def test_request_message_layout() -> None:
    digest = hashlib.sha256(b"").digest()
    message = request_message("get", "/v1/log/checkpoint?x=1", digest, 1758390000, "n" * 22, "AAAAAAAAAAAAAAAAAAAAAQ")
    assert message == (
        b"stave-request-v1\nGET\n/v1/log/checkpoint?x=1\n"
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        b"1758390000\nnnnnnnnnnnnnnnnnnnnnnn\nAAAAAAAAAAAAAAAAAAAAAQ"
    )


def test_replayed_request_is_refused(verifier: CredentialVerifier, app: Credential) -> None:
    headers = signed(app)
    check(verifier, headers)
    message = refused(CredentialError, "replayed", check, verifier, headers, now=NOW + 2)
    assert message.startswith("auth-required: request nonce already used")


@pytest.mark.redis
def test_replay_across_instances_sharing_redis(issuer: Issuer, redis_backend: Backend, app: Credential) -> None:
    first, second = (
        CredentialVerifier([issuer.public_key], redis_backend.revocation(), replay=redis_backend.spent())
        for _ in range(2)
    )
    headers = signed(app)
    check(first, headers)
    refused(CredentialError, "replayed", check, second, headers)


def test_same_nonce_under_another_token_of_the_holder_is_a_replay(
    issuer: Issuer, verifier: CredentialVerifier, app: Credential
) -> None:
    sibling = issuer.issue("app", HOLDER_PUBLIC, NOW)
    check(verifier, (signed(app, nonce="A" * 22)))
    refused(CredentialError, "replayed", check, verifier, (signed(sibling, nonce="A" * 22)))


def test_refused_request_does_not_burn_its_nonce(verifier: CredentialVerifier, app: Credential) -> None:
    headers = signed(app)
    refused(CredentialError, "bad-request-signature", check, verifier, headers, body=b"{}")
    check(verifier, headers)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"body": b'{"v":1,"type":"UNLIKE"}'}, id="body"),
        pytest.param({"body": b""}, id="body-dropped"),
        pytest.param({"method": "PUT"}, id="method"),
        pytest.param({"target": "/v1/events?dry_run=1"}, id="query"),
        pytest.param({"target": "/v1/admin/relays"}, id="path"),
    ],
)
def test_altered_request_is_refused(verifier: CredentialVerifier, app: Credential, changes: dict[str, object]) -> None:
    refused(CredentialError, "bad-request-signature", check, verifier, (signed(app)), **changes)


def test_request_signed_by_another_key_is_refused(verifier: CredentialVerifier, app: Credential) -> None:
    stolen = signed(app, key=STRANGER)  # the token without the holder's key
    refused(CredentialError, "bad-request-signature", check, verifier, stolen)


@pytest.mark.parametrize("offset", [-61.0, 61.0], ids=["old", "future"])
def test_stale_timestamp_is_refused(verifier: CredentialVerifier, app: Credential, offset: float) -> None:
    headers = signed(app, now=NOW + offset)
    message = refused(CredentialError, "stale", check, verifier, headers, now=NOW)
    assert "window ±60 s" in message
    check(verifier, (signed(app, now=NOW + offset)), now=NOW + offset + 60)  # within the window


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({}, "missing", id="no-authorization"),
        pytest.param({"Authorization": "Bearer x", "Stave-Signature": "t=1"}, "malformed", id="bearer"),
        pytest.param({"Authorization": "Stave ", "Stave-Signature": "t=1"}, "malformed", id="empty-token"),
        pytest.param({"Authorization": "stave {token}"}, "missing", id="no-signature"),
        pytest.param(
            {"Authorization": "Stave {token}", "Stave-Signature": "t=1, n=x"}, "malformed", id="bad-sig-header"
        ),
        pytest.param(
            {
                "Authorization": "Stave {token}",
                "Stave-Signature": "n=AAAAAAAAAAAAAAAAAAAAAA,t=1758390000,s=" + "A" * 86,
            },
            "malformed",
            id="fields-out-of-order",
        ),
    ],
)
def test_missing_or_malformed_headers(
    verifier: CredentialVerifier, app: Credential, headers: dict[str, str], code: str
) -> None:
    filled: dict[str, str | None] = {name: value.replace("{token}", app.token) for name, value in headers.items()}
    refused(CredentialError, code, check, verifier, filled)


def test_revoked_holder_cannot_sign_requests(verifier: CredentialVerifier, app: Credential) -> None:
    verifier.revocation.revoke_subject(HOLDER_PUBLIC, NOW)
    refused(AccessDenied, "revoked", check, verifier, (signed(app)))


def test_kind_and_expiry_apply_to_requests(issuer: Issuer, verifier: CredentialVerifier, app: Credential) -> None:
    relay = issuer.issue("relay", HOLDER_PUBLIC, NOW)
    refused(AccessDenied, "wrong-kind", check, verifier, (signed(relay)))
    late = app.expires_at + 3600
    refused(CredentialError, "expired", check, verifier, (signed(app, now=late)), now=late)


def test_sign_request_rejects_bad_nonces(app: Credential) -> None:
    with pytest.raises(ValueError, match="16 to 64"):
        signed(app, nonce="short")
