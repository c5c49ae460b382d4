"""Proof-of-work challenges: the price of a credential for a client nobody knows yet. Pure.

A client asks for a challenge, finds a counter that makes a hash start with enough zero bits,
and exchanges the answer (with its Ed25519 public key) for a short-lived ``app`` credential.

Challenge, as the server sends it (JSON)::

    {"nonce": "<base64url, 16 random bytes>", "difficulty": 20,
     "expires_at": 1758390700, "mac": "<base64url, 32 bytes>"}

- ``difficulty``: the number of leading zero bits the answer's hash needs (0 to 64);
- ``expires_at``: Unix seconds, an integer;
- ``mac`` = HMAC-SHA256(server secret, ``"stave-pow-v1" ‖ 0x00 ‖ nonce (16 bytes) ‖ difficulty
  (1 byte) ‖ expires_at (8 bytes, big-endian)``): fixed-width fields, so no two challenges share
  MAC input. Any API instance holding the secret checks a challenge without having issued it.

Answer: a counter ``c`` with 0 ≤ c < 2^64 such that SHA-256(``nonce (16 bytes) ‖ client public
key (32 bytes) ‖ c (8 bytes, big-endian)``) has at least ``difficulty`` leading zero bits.
Hashing the public key in binds the work to the key the credential will be issued to: one
answer buys one credential for one key.

Single use: a verified challenge's nonce is marked spent (a :class:`~stave.auth.spent.SpentStore`
shared by all instances) until the challenge expires, so an answer is accepted once.

:class:`DifficultyPolicy` raises the difficulty for an IP or key after rate-limit offenses and
lets it decay, so abuse gets expensive and honest clients behind the same address recover.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from stave.auth.encoding import b64url_decode, b64url_encode
from stave.auth.errors import PowError
from stave.auth.spent import MemorySpentStore, SpentStore
from stave.errors import ConfigError

__all__ = [
    "MAX_DIFFICULTY",
    "NONCE_SIZE",
    "Challenge",
    "ChallengeIssuer",
    "DifficultyPolicy",
    "leading_zero_bits",
    "solve",
    "work_digest",
]

NONCE_SIZE: Final = 16
PUBLIC_KEY_SIZE: Final = 32
MAC_SIZE: Final = 32
#: 2^64 hashes is beyond any client; a higher difficulty would only lock everyone out.
MAX_DIFFICULTY: Final = 64
MIN_SECRET_SIZE: Final = 32
_MAC_DOMAIN: Final = b"stave-pow-v1\x00"
_MAX_COUNTER: Final = (1 << 64) - 1
_MAX_TIME: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Challenge:
    """A challenge in its wire form (base64url strings), as issued or as sent back."""

    nonce: str
    difficulty: int
    expires_at: int
    mac: str

    def to_json(self) -> dict[str, str | int]:
        return {"nonce": self.nonce, "difficulty": self.difficulty, "expires_at": self.expires_at, "mac": self.mac}

    @classmethod
    def from_json(cls, value: object) -> Challenge:
        """Read a challenge a client sent back: exactly the four fields, with their types."""
        if not isinstance(value, Mapping) or set(value) != {"nonce", "difficulty", "expires_at", "mac"}:
            raise PowError("malformed", "challenge must be an object with nonce, difficulty, expires_at and mac")
        nonce, difficulty, expires_at, mac = value["nonce"], value["difficulty"], value["expires_at"], value["mac"]
        if not (isinstance(nonce, str) and isinstance(mac, str)):
            raise PowError("malformed", "challenge nonce and mac must be strings")
        if not (_is_int(difficulty) and _is_int(expires_at)):
            raise PowError("malformed", "challenge difficulty and expires_at must be integers")
        return cls(nonce, difficulty, expires_at, mac)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def work_digest(nonce: bytes, public_key: bytes, counter: int) -> bytes:
    """SHA-256(nonce ‖ public key ‖ counter as 8 bytes big-endian)."""
    return hashlib.sha256(nonce + public_key + counter.to_bytes(8, "big")).digest()


def leading_zero_bits(digest: bytes) -> int:
    return len(digest) * 8 - int.from_bytes(digest, "big").bit_length()


def solve(challenge: Challenge, public_key: bytes, *, max_iterations: int | None = None, start: int = 0) -> int:
    """The first counter from ``start`` whose work digest has enough zero bits (client side).

    The search is bounded: by default 64 × 2^difficulty tries, which fails with probability
    e^-64; past the bound it raises ``PowError("exhausted")``.
    """
    nonce = b64url_decode(challenge.nonce, "challenge nonce", PowError, size=NONCE_SIZE)
    _check_public_key(public_key)
    if not 0 <= challenge.difficulty <= MAX_DIFFICULTY:
        raise PowError("malformed", f"difficulty must be 0 to {MAX_DIFFICULTY}, got {challenge.difficulty}")
    if max_iterations is None:
        max_iterations = 1 << min(challenge.difficulty + 6, 64)
    prefix = hashlib.sha256(nonce + public_key)  # hash the fixed 48 bytes once, copy per try
    # A digest has >= d leading zero bits exactly when, read as a 256-bit integer, it is < 2^(256-d).
    bound = 1 << (256 - challenge.difficulty)
    for counter in range(start, min(start + max_iterations, _MAX_COUNTER + 1)):
        attempt = prefix.copy()
        attempt.update(counter.to_bytes(8, "big"))
        if int.from_bytes(attempt.digest(), "big") < bound:
            return counter
    raise PowError("exhausted", f"no answer to difficulty {challenge.difficulty} in {max_iterations} tries")


def _check_public_key(public_key: bytes) -> None:
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        raise PowError("malformed", f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")


def _check_difficulty(difficulty: int, what: str) -> None:
    if not _is_int(difficulty) or not 0 <= difficulty <= MAX_DIFFICULTY:
        raise ConfigError(f"{what} must be an integer from 0 to {MAX_DIFFICULTY}, got {difficulty!r}")


class ChallengeIssuer:
    """Issues and checks challenges with a server secret; ``spent`` makes each one single-use.

    Every instance behind a load balancer needs the same ``secret`` and the same ``spent`` store.
    """

    def __init__(
        self,
        secret: bytes,
        difficulty: int,
        ttl: float,
        *,
        spent: SpentStore | None = None,
        randbytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_SIZE:
            raise ConfigError(f"the challenge secret must be at least {MIN_SECRET_SIZE} random bytes")
        _check_difficulty(difficulty, "difficulty")
        if not (math.isfinite(ttl) and ttl > 0):
            raise ConfigError(f"challenge ttl must be a positive number of seconds, got {ttl!r}")
        self._secret = secret
        self.difficulty = difficulty
        self.ttl = ttl
        self.spent = spent if spent is not None else MemorySpentStore()
        self._randbytes = randbytes

    def issue(self, now: float, *, difficulty: int | None = None) -> Challenge:
        """A new challenge expiring ``ttl`` seconds from ``now``; ``difficulty`` overrides the default
        (pass ``DifficultyPolicy.difficulty(ip, now)``)."""
        chosen = self.difficulty if difficulty is None else difficulty
        _check_difficulty(chosen, "difficulty")
        nonce = self._randbytes(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"randbytes returned {len(nonce)} bytes, expected {NONCE_SIZE}")
        expires_at = math.ceil(now + self.ttl)
        return Challenge(b64url_encode(nonce), chosen, expires_at, b64url_encode(self._mac(nonce, chosen, expires_at)))

    def verify(self, challenge: Challenge, public_key: bytes, counter: int, now: float) -> None:
        """Accept the answer ``counter`` for ``public_key`` once, or raise ``PowError`` saying why."""
        # (1) Well-formed: sizes and ranges, before any work.
        nonce = b64url_decode(challenge.nonce, "challenge nonce", PowError, size=NONCE_SIZE)
        mac = b64url_decode(challenge.mac, "challenge mac", PowError, size=MAC_SIZE)
        _check_public_key(public_key)
        if not _is_int(counter) or not 0 <= counter <= _MAX_COUNTER:
            raise PowError("malformed", f"the answer must be an integer from 0 to 2^64-1, got {counter!r}")
        if not 0 <= challenge.difficulty <= MAX_DIFFICULTY or not 0 <= challenge.expires_at <= _MAX_TIME:
            raise PowError("forged", "challenge was not issued by this server (fields out of range)")
        # (2) Ours, unaltered: a client cannot lower the difficulty or extend the expiry.
        expected = self._mac(nonce, challenge.difficulty, challenge.expires_at)
        if not hmac.compare_digest(mac, expected):
            raise PowError("forged", "challenge was not issued by this server or was altered (bad MAC)")
        # (3) Still open.
        if now > challenge.expires_at:
            raise PowError("expired", f"challenge expired at {challenge.expires_at} (now {int(now)}); get a new one")
        # (4) Enough work.
        got = leading_zero_bits(work_digest(nonce, public_key, counter))
        if got < challenge.difficulty:
            raise PowError(
                "insufficient-work",
                f"insufficient work: expected {challenge.difficulty} leading zero bits, got {got}",
            )
        # (5) Single use, last: a wrong answer must not burn the challenge of the client that owns it.
        if not self.spent.mark_spent(f"pow:{challenge.nonce}", challenge.expires_at, now):
            raise PowError("replayed", "challenge was already used; get a new one")

    def _mac(self, nonce: bytes, difficulty: int, expires_at: int) -> bytes:
        message = _MAC_DOMAIN + nonce + difficulty.to_bytes(1, "big") + expires_at.to_bytes(8, "big")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def __repr__(self) -> str:  # never the secret
        return f"ChallengeIssuer(difficulty={self.difficulty}, ttl={self.ttl})"


class DifficultyPolicy:
    """Difficulty per identifier (an IP, a key): ``base`` plus ``per_offense`` bits per recent offense.

    An offense (the server records one when a rate limit refuses the identifier) adds 1 to its
    score; the score halves every ``half_life`` seconds, and the difficulty is
    ``min(max, base + floor(per_offense × score))``. The score is capped at what reaches ``max``,
    so the difficulty starts falling one half-life after the abuse stops, however long it lasted.

    State is per process, thread-safe and bounded (``max_tracked`` identifiers, least recently
    offending forgotten first): instances behind a load balancer each raise the price for the
    offenders they see, which is enough because the rate limits themselves are shared.
    """

    def __init__(
        self, base: int, max: int, per_offense: int, *, half_life: float = 600.0, max_tracked: int = 100_000
    ) -> None:
        _check_difficulty(base, "base difficulty")
        _check_difficulty(max, "max difficulty")
        if max < base:
            raise ConfigError(f"max difficulty {max} is below the base {base}")
        if not _is_int(per_offense) or per_offense < 0:
            raise ConfigError(f"per_offense must be a non-negative integer, got {per_offense!r}")
        if not (math.isfinite(half_life) and half_life > 0) or max_tracked < 1:
            raise ConfigError("half_life must be positive seconds and max_tracked at least 1")
        self.base, self.max, self.per_offense, self.half_life = base, max, per_offense, half_life
        self.max_tracked = max_tracked
        self._cap = (max - base) / per_offense if per_offense else 0.0
        self._scores: OrderedDict[str, tuple[float, float]] = OrderedDict()  # id -> (score, as of)
        self._lock = threading.Lock()

    def difficulty(self, identifier: str, now: float) -> int:
        with self._lock:
            return self._difficulty(self._score(identifier, now))

    def record_offense(self, identifier: str, now: float, weight: float = 1.0) -> int:
        """Count an offense by ``identifier``; returns its new difficulty."""
        with self._lock:
            score = min(self._score(identifier, now) + weight, self._cap)
            self._scores[identifier] = (score, now)
            self._scores.move_to_end(identifier)
            self._prune(now)
            return self._difficulty(score)

    def _score(self, identifier: str, now: float) -> float:
        entry = self._scores.get(identifier)
        if entry is None:
            return 0.0
        score, since = entry
        return score * math.exp2(-max(0.0, now - since) / self.half_life)

    def _difficulty(self, score: float) -> int:
        return min(self.max, self.base + math.floor(self.per_offense * score))

    def _prune(self, now: float) -> None:
        # Oldest offenders first: drop those whose score no longer adds a bit, then the excess.
        while self._scores:
            oldest = next(iter(self._scores))
            if self.per_offense * self._score(oldest, now) >= 1 and len(self._scores) <= self.max_tracked:
                break
            del self._scores[oldest]

    def __len__(self) -> int:
        return len(self._scores)
