"""Proof-of-work challenges: the answer is checked, the MAC binds the terms, one use only."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from stave.auth import Challenge, ChallengeIssuer, DifficultyPolicy, PowError, solve
from stave.auth.encoding import b64url_decode, b64url_encode
from stave.auth.pow import MAX_DIFFICULTY, leading_zero_bits, work_digest
from stave.errors import ConfigError, VerificationError
from tests.auth.conftest import NOW, Backend

SECRET = bytes(range(32))
KEY = hashlib.sha256(b"client key").digest()  # any 32 bytes: the work only hashes the key
OTHER_KEY = hashlib.sha256(b"another client").digest()
DIFFICULTY = 8


def issuer(spent_backend: Backend | None = None) -> ChallengeIssuer:
    spent = spent_backend.spent() if spent_backend else None
    return ChallengeIssuer(SECRET, DIFFICULTY, 60.0, spent=spent)


def failing_counter(challenge: Challenge, key: bytes) -> int:
    """A counter whose digest has fewer zero bits than asked."""
    nonce = b64url_decode(challenge.nonce, "nonce", PowError)
    return next(c for c in range(1000) if leading_zero_bits(work_digest(nonce, key, c)) < challenge.difficulty)


def refused(code: str, call: Callable[..., object], *args: object, **kwargs: object) -> PowError:
    with pytest.raises(PowError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, caught.value
    return caught.value


def test_solve_then_verify(backend: Backend) -> None:
    pow_ = issuer(backend)
    challenge = pow_.issue(NOW)
    counter = solve(challenge, KEY)
    assert leading_zero_bits(work_digest(b64url_decode(challenge.nonce, "", PowError), KEY, counter)) >= DIFFICULTY
    pow_.verify(challenge, KEY, counter, NOW + 1)


def test_challenge_fields_and_mac_follow_the_documented_layout() -> None:
    pow_ = ChallengeIssuer(SECRET, 20, 30.5, randbytes=lambda n: b"\x07" * n)
    challenge = pow_.issue(NOW + 0.25)
    assert challenge.nonce == b64url_encode(b"\x07" * 16)
    assert challenge.difficulty == 20
    assert challenge.expires_at == 1_758_390_031  # ceil(now + ttl)
    message = b"stave-pow-v1\x00" + b"\x07" * 16 + bytes([20]) + (1_758_390_031).to_bytes(8, "big")
    assert challenge.mac == b64url_encode(hmac.new(SECRET, message, hashlib.sha256).digest())
    assert Challenge.from_json(challenge.to_json()) == challenge


def test_any_instance_with_the_secret_verifies() -> None:
    challenge = issuer().issue(NOW)
    issuer().verify(challenge, KEY, solve(challenge, KEY), NOW)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: replace(c, difficulty=c.difficulty - 1), id="lower-difficulty"),
        pytest.param(lambda c: replace(c, expires_at=c.expires_at + 3600), id="later-expiry"),
        pytest.param(lambda c: replace(c, nonce=b64url_encode(b"\x00" * 16)), id="other-nonce"),
        pytest.param(
            lambda c: replace(c, mac=b64url_encode(bytes([b64url_decode(c.mac, "", PowError)[0] ^ 1]) + b"\x00" * 31)),
            id="flipped-mac",
        ),
        pytest.param(lambda c: replace(c, difficulty=MAX_DIFFICULTY + 1), id="difficulty-out-of-range"),
    ],
)
def test_tampered_challenge_is_forged(tamper: Callable[[Challenge], Challenge]) -> None:
    pow_ = issuer()
    challenge = tamper(pow_.issue(NOW))
    counter = solve(challenge, KEY) if challenge.difficulty <= MAX_DIFFICULTY else 0  # a right answer, or any
    error = refused("forged", pow_.verify, challenge, KEY, counter, NOW)
    assert str(error).startswith("pow: ")


def test_challenge_of_another_secret_is_forged() -> None:
    challenge = ChallengeIssuer(b"\x01" * 32, DIFFICULTY, 60.0).issue(NOW)
    refused("forged", issuer().verify, challenge, KEY, solve(challenge, KEY), NOW)


def test_expired_challenge() -> None:
    pow_ = issuer()
    challenge = pow_.issue(NOW)
    counter = solve(challenge, KEY)
    error = refused("expired", pow_.verify, challenge, KEY, counter, challenge.expires_at + 0.001)
    assert f"expired at {challenge.expires_at}" in str(error)
    pow_.verify(challenge, KEY, counter, challenge.expires_at)  # the last second still counts


def test_replay_is_refused(backend: Backend) -> None:
    pow_ = issuer(backend)
    challenge = pow_.issue(NOW)
    counter = solve(challenge, KEY)
    pow_.verify(challenge, KEY, counter, NOW)
    refused("replayed", pow_.verify, challenge, KEY, counter, NOW + 1)
    # Another answer to the same challenge is a replay too: the challenge, not the answer, is spent.
    refused("replayed", pow_.verify, challenge, KEY, solve(challenge, KEY, start=counter + 1), NOW + 1)


@pytest.mark.redis
def test_replay_across_instances_sharing_redis(redis_backend: Backend) -> None:
    first, second = issuer(redis_backend), issuer(redis_backend)  # two clients, as two processes
    challenge = first.issue(NOW)
    counter = solve(challenge, KEY)
    second.verify(challenge, KEY, counter, NOW)
    refused("replayed", first.verify, challenge, KEY, counter, NOW)


def test_concurrent_answers_accept_exactly_one(backend: Backend) -> None:
    pow_ = issuer(backend)
    challenge = pow_.issue(NOW)
    counter = solve(challenge, KEY)
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            pow_.verify(challenge, KEY, counter, NOW)
            outcomes.append("ok")
        except PowError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["replayed"] * 7


def test_insufficient_work_says_expected_and_got() -> None:
    pow_ = issuer()
    challenge = pow_.issue(NOW)
    counter = failing_counter(challenge, KEY)
    got = leading_zero_bits(work_digest(b64url_decode(challenge.nonce, "", PowError), KEY, counter))
    error = refused("insufficient-work", pow_.verify, challenge, KEY, counter, NOW)
    assert str(error) == f"pow: insufficient work: expected {DIFFICULTY} leading zero bits, got {got}"
    # A wrong answer does not burn the challenge for its owner.
    pow_.verify(challenge, KEY, solve(challenge, KEY), NOW)


def test_work_is_bound_to_the_key() -> None:
    pow_ = issuer()
    challenge = pow_.issue(NOW)
    nonce = b64url_decode(challenge.nonce, "", PowError)
    counter = next(
        c
        for c in range(1 << 20)
        if leading_zero_bits(work_digest(nonce, KEY, c)) >= DIFFICULTY
        and leading_zero_bits(work_digest(nonce, OTHER_KEY, c)) < DIFFICULTY
    )
    refused("insufficient-work", pow_.verify, challenge, OTHER_KEY, counter, NOW)
    pow_.verify(challenge, KEY, counter, NOW)


@pytest.mark.parametrize(
    ("key", "counter"),
    [(b"\x00" * 31, 0), (KEY, -1), (KEY, 1 << 64), (KEY, True)],
    ids=["short-key", "negative-counter", "counter-over-64-bits", "bool-counter"],
)
def test_malformed_answers(key: bytes, counter: int) -> None:
    pow_ = issuer()
    refused("malformed", pow_.verify, pow_.issue(NOW), key, counter, NOW)


@pytest.mark.parametrize(
    "value",
    [
        {"nonce": "AAAAAAAAAAAAAAAAAAAAAA", "difficulty": True, "expires_at": 1, "mac": "x"},
        {"nonce": "AAAAAAAAAAAAAAAAAAAAAA", "difficulty": 8, "expires_at": 1.5, "mac": "x"},
        {"nonce": "AAAAAAAAAAAAAAAAAAAAAA", "difficulty": 8, "expires_at": 1, "mac": "x", "extra": 1},
        {"nonce": 1, "difficulty": 8, "expires_at": 1, "mac": "x"},
        ["not", "an", "object"],
    ],
    ids=["bool-difficulty", "float-expiry", "extra-field", "number-nonce", "list"],
)
def test_challenge_json_is_strict(value: object) -> None:
    refused("malformed", Challenge.from_json, value)


def test_non_canonical_base64_is_malformed() -> None:
    pow_ = issuer()
    challenge = pow_.issue(NOW)
    counter = solve(challenge, KEY)
    refused("malformed", pow_.verify, replace(challenge, mac=challenge.mac + "="), KEY, counter, NOW)
    last = challenge.nonce[-1]  # 16 bytes leave 4 spare bits in the last character
    stray = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(last) ^ 1
    ]
    refused("malformed", pow_.verify, replace(challenge, nonce=challenge.nonce[:-1] + stray), KEY, counter, NOW)


def test_solve_is_bounded() -> None:
    challenge = issuer().issue(NOW, difficulty=40)
    refused("exhausted", solve, challenge, KEY, max_iterations=100)


def test_difficulty_override_and_zero() -> None:
    pow_ = issuer()
    easy = pow_.issue(NOW, difficulty=0)
    pow_.verify(easy, KEY, 0, NOW)  # zero bits: any answer
    hard = pow_.issue(NOW, difficulty=12)
    refused("insufficient-work", pow_.verify, hard, KEY, failing_counter(hard, KEY), NOW)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="at least 32"):
        ChallengeIssuer(b"short", 8, 60)
    with pytest.raises(ConfigError, match="0 to 64"):
        ChallengeIssuer(SECRET, 65, 60)
    with pytest.raises(ConfigError, match="ttl"):
        ChallengeIssuer(SECRET, 8, 0)
    with pytest.raises(ConfigError):
        issuer().issue(NOW, difficulty=-1)
    assert repr(issuer()) == "ChallengeIssuer(difficulty=8, ttl=60.0)"  # never the secret


def test_errors_are_verification_errors() -> None:
    assert issubclass(PowError, VerificationError)
    assert PowError("x", "y").http_status == 401


# --- the difficulty policy -------------------------------------------------------------------


def test_difficulty_rises_with_offenses_up_to_the_max() -> None:
    policy = DifficultyPolicy(base=10, max=16, per_offense=2)
    assert policy.difficulty("203.0.113.7", NOW) == 10
    assert [policy.record_offense("203.0.113.7", NOW) for _ in range(5)] == [12, 14, 16, 16, 16]
    assert policy.difficulty("203.0.113.7", NOW) == 16
    assert policy.difficulty("198.51.100.1", NOW) == 10  # others are not affected


def test_difficulty_decays_by_half_life() -> None:
    policy = DifficultyPolicy(base=10, max=30, per_offense=2, half_life=100.0)
    for _ in range(4):
        policy.record_offense("ip", NOW)  # score 4: +8 bits
    assert policy.difficulty("ip", NOW) == 18
    assert policy.difficulty("ip", NOW + 100) == 14  # score 2
    assert policy.difficulty("ip", NOW + 200) == 12  # score 1
    assert policy.difficulty("ip", NOW + 2000) == 10
    assert policy.record_offense("ip", NOW + 100) == 16  # 2 + 1 offenses left: score 3


def test_long_abuse_decays_as_soon_as_it_stops() -> None:
    policy = DifficultyPolicy(base=10, max=14, per_offense=2, half_life=60.0)
    for _ in range(1000):
        policy.record_offense("ip", NOW)
    assert policy.difficulty("ip", NOW) == 14
    assert policy.difficulty("ip", NOW + 60) == 12  # capped score: one half-life halves the surplus


def test_difficulty_policy_is_bounded() -> None:
    policy = DifficultyPolicy(base=8, max=20, per_offense=4, half_life=10.0, max_tracked=100)
    for number in range(1000):
        policy.record_offense(f"ip-{number}", NOW)
    assert len(policy) == 100
    policy.record_offense("late", NOW + 1000)  # everything else decayed below one bit
    assert len(policy) == 1


def test_difficulty_policy_configuration() -> None:
    with pytest.raises(ConfigError, match="below the base"):
        DifficultyPolicy(base=12, max=10, per_offense=1)
    with pytest.raises(ConfigError):
        DifficultyPolicy(base=8, max=70, per_offense=1)
    with pytest.raises(ConfigError):
        DifficultyPolicy(base=8, max=10, per_offense=-1)
