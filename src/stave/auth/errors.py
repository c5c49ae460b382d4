"""Why a request was refused, in the words a client can act on.

Every refusal is an :class:`AuthError` whose message starts with a machine-readable prefix, as a
Nostr relay's ``OK``/``CLOSED`` message does (NIP-01, NIP-42), followed by what was expected and
what was found::

    pow: insufficient work: expected 20 leading zero bits, got 17
    auth-required: credential expired at 1758390700 (now 1758390800, skew 30 s)
    restricted: credential kind 'app' is not accepted here (accepted: relay)
    rate-limited: 10 requests per 1 s with bursts of 20 exceeded; retry after 0.4 s

``prefix`` says what the client should do next, ``code`` which check failed (stable, for tests,
logs and metrics), ``http_status`` the status the server answers with:

=====================  ======  ============================================  ==================
prefix                 status  meaning                                       the client should
=====================  ======  ============================================  ==================
``pow:``               401     the proof-of-work answer was refused          get a new challenge
``auth-required:``     401     no valid credential or request signature      (re)authenticate
``restricted:``        403     authentic, but not allowed (kind, scope,      stop; ask an admin
                               revoked)
``rate-limited:``      429     too many requests (``retry_after`` seconds)   wait, then retry
=====================  ======  ============================================  ==================

The first three are :class:`~stave.errors.VerificationError` (the client's data is at fault);
``RateLimited`` is not: the same request succeeds later.
"""

from __future__ import annotations

import math
from typing import ClassVar

from stave.errors import StaveError, VerificationError

__all__ = ["AccessDenied", "AuthError", "CredentialError", "PowError", "RateLimited"]


class AuthError(StaveError):
    """A request was refused by access control. ``str(error)`` is ``"<prefix>: <detail>"``."""

    prefix: ClassVar[str] = "error"
    http_status: ClassVar[int] = 401

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{self.prefix}: {detail}")


class PowError(AuthError, VerificationError):
    """A proof-of-work challenge or its solution is refused.

    Codes: ``malformed``, ``forged`` (bad MAC), ``expired``, ``insufficient-work``, ``replayed``,
    ``exhausted`` (``solve`` gave up: raised on the client, never by the server).
    """

    prefix = "pow"


class CredentialError(AuthError, VerificationError):
    """No valid credential or proof of possession: the client must (re)authenticate.

    Codes: ``missing``, ``malformed``, ``unsupported-version``, ``unknown-issuer``, ``forged``,
    ``not-yet-valid``, ``expired``, ``stale`` (request timestamp outside the window),
    ``bad-request-signature``, ``replayed``.
    """

    prefix = "auth-required"


class AccessDenied(AuthError, VerificationError):
    """An authentic credential that may not do this. Codes: ``wrong-kind``, ``scope``, ``revoked``."""

    prefix = "restricted"
    http_status = 403


class RateLimited(AuthError):
    """Too many requests; ``retry_after`` is the wait in seconds (``retry_after_header`` rounds up)."""

    prefix = "rate-limited"
    http_status = 429

    def __init__(self, code: str, detail: str, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(code, detail)

    @property
    def retry_after_header(self) -> str:
        """The ``Retry-After`` value: whole seconds, rounded up so a client that obeys succeeds."""
        return str(max(1, math.ceil(self.retry_after)))
