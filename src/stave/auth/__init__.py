"""Access control for the server and the relay: proof of work, credentials, rate limits.

The chain (architecture, seed 004): a new client solves a proof-of-work challenge
(:mod:`stave.auth.pow`) and gets a short-lived ``app`` credential; relays and the admin app hold
longer-lived ``relay`` and ``admin`` credentials (:mod:`stave.auth.credentials`). Every request
carries its credential and a signature by the holder's key, and passes per-IP and
per-credential rate limits (:mod:`stave.auth.ratelimit`). Refusals are
:class:`~stave.auth.errors.AuthError` with Nostr-style prefixes (``pow:``, ``auth-required:``,
``restricted:``, ``rate-limited:``).

Framework-independent and pure where possible: time comes in as ``now`` (Unix seconds),
randomness is injectable, and state lives behind small store interfaces with in-memory drivers
here and shared Redis drivers in :mod:`stave.auth.redis` (which needs ``stave[redis]``).
"""

from stave.auth.credentials import (
    AUTH_SCHEME,
    DEFAULT_LIFETIMES,
    SIGNATURE_HEADER,
    TOKEN_PREFIX,
    Credential,
    CredentialVerifier,
    Issuer,
    Kind,
    MemoryRevocationStore,
    RevocationStore,
    read_token_unverified,
    request_message,
    sign_request,
)
from stave.auth.errors import AccessDenied, AuthError, CredentialError, PowError, RateLimited
from stave.auth.pow import Challenge, ChallengeIssuer, DifficultyPolicy, solve
from stave.auth.ratelimit import Decision, MemoryRateLimiter, RateLimiter
from stave.auth.spent import MemorySpentStore, SpentStore

__all__ = [
    "AUTH_SCHEME",
    "DEFAULT_LIFETIMES",
    "SIGNATURE_HEADER",
    "TOKEN_PREFIX",
    "AccessDenied",
    "AuthError",
    "Challenge",
    "ChallengeIssuer",
    "Credential",
    "CredentialError",
    "CredentialVerifier",
    "Decision",
    "DifficultyPolicy",
    "Issuer",
    "Kind",
    "MemoryRateLimiter",
    "MemoryRevocationStore",
    "MemorySpentStore",
    "PowError",
    "RateLimited",
    "RateLimiter",
    "RevocationStore",
    "SpentStore",
    "read_token_unverified",
    "request_message",
    "sign_request",
    "solve",
]
