"""Access control of the server: proof of work → credential, signed requests, rate limits.

Seed 004's chain: an app asks ``POST /auth/challenge`` for a single-use challenge, solves it
and exchanges the solution with its Ed25519 public key at ``POST /auth/credential`` for a
short-lived ``app`` credential. Every write (``POST /events``, ``POST /events:batch``,
``PUT /media``) then carries the credential and a signature of the request by the holder's
key (``Authorization: Stave <token>``, ``Stave-Signature: t=…,n=…,s=…``; formats in
:mod:`stave.auth.credentials`), so a stolen token or a replayed request is refused. Reads are
public. Rate limits apply per client address and per credential; a client that keeps hitting
them gets harder challenges. The issuer key and the challenge secret live in the data
directory (mode 0600), so every instance sharing it — or the same key files — agrees.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from stave.auth import (
    AuthError,
    Challenge,
    ChallengeIssuer,
    CredentialVerifier,
    DifficultyPolicy,
    Issuer,
    Kind,
    MemoryRateLimiter,
    MemoryRevocationStore,
    MemorySpentStore,
    RateLimited,
    RateLimiter,
)
from stave.auth.credentials import Credential
from stave.config import Settings
from stave.server.problems import Problem

__all__ = ["RELAY_KINDS", "WRITE_KINDS", "Access", "load_secret"]

WRITE_KINDS = frozenset({Kind.APP, Kind.RELAY, Kind.ADMIN})
RELAY_KINDS = frozenset({Kind.RELAY, Kind.ADMIN})


def load_secret(path: Path, size: int = 32) -> bytes:
    """A random secret kept in a 0600 file, made on first use."""
    if path.exists():
        data = path.read_bytes()
        if len(data) != size:
            raise OSError(f"{path}: expected {size} bytes, found {len(data)}")
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(size)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temp, path)  # create-only: when two instances start at once, the first key wins
    except FileExistsError:
        data = path.read_bytes()
    finally:
        temp.unlink()
    return data


@dataclass
class Access:
    settings: Settings
    issuer: Issuer
    challenges: ChallengeIssuer
    verifier: CredentialVerifier
    per_address: RateLimiter
    per_credential: RateLimiter
    difficulty: DifficultyPolicy
    #: with ``auth.relays_only``: is this relay key (base64url) approved? Set by the server.
    relay_approved: Callable[[str], bool] | None = None

    @classmethod
    def open(cls, settings: Settings) -> Access:
        auth = settings.auth
        directory = settings.data_path / "auth"
        issuer = Issuer(load_secret(directory / "issuer.key"))
        spent = MemorySpentStore()
        revocation = MemoryRevocationStore()
        per_address: RateLimiter = MemoryRateLimiter(auth.rate_per_address, auth.burst)
        per_credential: RateLimiter = MemoryRateLimiter(auth.rate_per_credential, auth.burst)
        if auth.redis:  # shared by every instance
            from stave.auth import redis as auth_redis

            client = auth_redis.connect(auth.redis)
            spent = auth_redis.RedisSpentStore(client)  # type: ignore[assignment]
            revocation = auth_redis.RedisRevocationStore(client)  # type: ignore[assignment]
            per_address = auth_redis.RedisRateLimiter(client, auth.rate_per_address, auth.burst, name="address")
            per_credential = auth_redis.RedisRateLimiter(
                client, auth.rate_per_credential, auth.burst, name="credential"
            )
        return cls(
            settings=settings,
            issuer=issuer,
            challenges=ChallengeIssuer(
                load_secret(directory / "challenge.secret"), auth.difficulty, auth.challenge_ttl, spent=spent
            ),
            verifier=CredentialVerifier([issuer.public_key], revocation, replay=spent),
            per_address=per_address,
            per_credential=per_credential,
            difficulty=DifficultyPolicy(auth.difficulty, auth.max_difficulty, 2),
        )

    # --- proof of work → credential ---------------------------------------------------------

    def challenge(self, address: str) -> dict[str, Any]:
        now = time.time()
        self.limit_address(address, now)
        issued = self.challenges.issue(now, difficulty=self.difficulty.difficulty(address, now))
        return issued.to_json()

    def credential(self, address: str, body: Any) -> dict[str, Any]:
        now = time.time()
        self.limit_address(address, now)
        if not isinstance(body, dict):
            raise Problem(400, "invalid", "expected {challenge, public_key, counter}")
        try:
            challenge = Challenge.from_json(body.get("challenge"))
            public_key = base64.urlsafe_b64decode(str(body.get("public_key", "")) + "==")
            counter = body.get("counter")
            if type(counter) is not int or counter < 0:
                raise Problem(400, "invalid", "counter: expected a non-negative integer")
            self.challenges.verify(challenge, public_key, counter, now)
            credential = self.issuer.issue(Kind.APP, public_key, now)
        except AuthError as exc:
            raise _problem(exc) from None
        except ValueError as exc:
            raise Problem(400, "invalid", f"public_key: {exc}") from None
        return {"token": credential.token, "kind": credential.kind.value, "expires_at": credential.expires_at}

    # --- every write --------------------------------------------------------------------------

    def authorize(
        self,
        request: Request,
        body: bytes | None,
        *,
        body_sha256: bytes | None = None,
        kinds: frozenset[Kind] | None = None,
    ) -> Credential | None:
        """Check the credential and the request signature; None when the server allows anonymous writes."""
        now = time.time()
        address = request.client.host if request.client else "unknown"
        self.limit_address(address, now)
        authorization = request.headers.get("authorization")
        if authorization is None and not self.settings.auth.required:
            return None
        if kinds is None:
            kinds = RELAY_KINDS if self.settings.auth.relays_only else WRITE_KINDS
        # The target as sent, still percent-encoded: what the client signed (request.url.path is decoded).
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        target = raw_path.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
        try:
            credential = self.verifier.verify_request(
                authorization=authorization,
                signature=request.headers.get("stave-signature"),
                method=request.method,
                target=target,
                now=now,
                kinds=kinds,
                body=body,
                body_sha256=body_sha256,
            )
            self.per_credential.enforce(credential.id, now=now)
            if self.settings.auth.relays_only and credential.kind is Kind.RELAY and self.relay_approved is not None:
                holder = base64.urlsafe_b64encode(credential.subject_public_key).decode().rstrip("=")
                if not self.relay_approved(holder):
                    raise Problem(403, "restricted", "this relay is not approved on this server")
        except RateLimited as exc:
            self.difficulty.record_offense(address, now)
            raise _problem(exc) from None
        except AuthError as exc:
            raise _problem(exc) from None
        return credential

    def limit_address(self, address: str, now: float) -> None:
        try:
            self.per_address.enforce(address, now=now)
        except RateLimited as exc:
            self.difficulty.record_offense(address, now)
            raise _problem(exc) from None

    def info(self) -> dict[str, Any]:
        auth = self.settings.auth
        return {
            "required": auth.required,
            "pow_difficulty": auth.difficulty,
            "pow_max_difficulty": auth.max_difficulty,
            "rate_per_address": auth.rate_per_address,
            "rate_per_credential": auth.rate_per_credential,
            "burst": auth.burst,
            "relays_only": auth.relays_only,
            "issuer": base64.urlsafe_b64encode(self.issuer.public_key).decode().rstrip("="),
        }


def _problem(exc: AuthError) -> Problem:
    retry = getattr(exc, "retry_after", None)
    return Problem(exc.http_status, exc.prefix, exc.detail, retry_after=retry)
