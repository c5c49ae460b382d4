"""The spent-nonce and revocation stores, in memory and in Redis, and the public surface."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import threading

import pytest

from stave.auth import AccessDenied, AuthError, CredentialError, MemorySpentStore, PowError, RateLimited, SpentStore
from stave.auth.redis import RedisRevocationStore, RedisSpentStore, connect
from stave.errors import BackendUnavailable, StaveError, VerificationError
from tests.auth.conftest import NOW, Backend
from tests.servers.redis import RedisServer


def test_spent_once(backend: Backend) -> None:
    spent = backend.spent()
    assert spent.mark_spent("pow:abc", NOW + 60, NOW)
    assert not spent.mark_spent("pow:abc", NOW + 60, NOW + 1)
    assert spent.mark_spent("pow:abd", NOW + 60, NOW + 1)


def test_spent_concurrently_exactly_once(backend: Backend) -> None:
    stores = [backend.spent() for _ in range(8)]  # Redis: 8 clients, as 8 processes
    wins: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def run(store: SpentStore) -> None:
        barrier.wait()
        wins.extend(store.mark_spent(f"n{i}", NOW + 60, NOW) for i in range(200))

    threads = [threading.Thread(target=run, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 200


def test_memory_spent_expires_and_prunes() -> None:
    spent = MemorySpentStore()
    for number in range(100):
        spent.mark_spent(f"n{number}", NOW + 10, NOW)
    assert not spent.mark_spent("n0", NOW + 10, NOW + 9.9)
    assert spent.mark_spent("n0", NOW + 30, NOW + 10)  # its life ended: nothing left to replay
    assert len(spent) == 1


def test_memory_spent_is_bounded_and_fails_closed() -> None:
    spent = MemorySpentStore(max_entries=3)
    for number in range(3):
        spent.mark_spent(f"n{number}", NOW + 10 + number, NOW)
    with pytest.raises(RateLimited) as caught:
        spent.mark_spent("n3", NOW + 10, NOW)
    assert caught.value.retry_after == pytest.approx(10)
    assert spent.mark_spent("n3", NOW + 20, NOW + 10)  # the first one expired: room again


def test_spent_at_the_end_of_its_life_is_still_remembered(backend: Backend) -> None:
    spent = backend.spent()
    assert spent.mark_spent("edge", NOW, NOW)
    assert not spent.mark_spent("edge", NOW, NOW + 0.5)


def test_spent_nonce_validation() -> None:
    with pytest.raises(ValueError, match="nonce"):
        MemorySpentStore().mark_spent("", NOW, NOW)
    with pytest.raises(ValueError, match="nonce"):
        MemorySpentStore().mark_spent("x" * 257, NOW, NOW)
    with pytest.raises(ValueError, match="finite"):
        MemorySpentStore().mark_spent("x", float("nan"), NOW)


@pytest.mark.redis
def test_redis_spent_ttl(redis_backend: Backend, redis_server: RedisServer) -> None:
    redis_backend.spent().mark_spent("pow:abc", NOW + 60, NOW)
    ttl = redis_server.command("PTTL", "stave:auth:spent:pow:abc")
    assert isinstance(ttl, int)
    assert 59_000 < ttl <= 60_000


@pytest.mark.redis
def test_redis_revocation_ttls(redis_backend: Backend, redis_server: RedisServer) -> None:
    revocation = redis_backend.revocation()
    cred_key = "stave:auth:revoked:cred:AAAAAAAAAAAAAAAAAAAAAQ"
    revocation.revoke_credential("AAAAAAAAAAAAAAAAAAAAAQ", NOW, until=NOW + 100)
    first = redis_server.command("PTTL", cred_key)
    assert isinstance(first, int)
    assert 99_000 < first <= 100_000
    revocation.revoke_credential("AAAAAAAAAAAAAAAAAAAAAQ", NOW, until=NOW + 10)  # shorter: no change
    second = redis_server.command("PTTL", cred_key)
    assert isinstance(second, int)
    assert second > 99_000
    key = bytes(32)
    revocation.revoke_subject(key, NOW)
    revocation.revoke_subject(key, NOW, until=NOW + 10)  # a revocation for good stays for good
    assert redis_server.command("PTTL", "stave:auth:revoked:subject:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == -1


def test_redis_down_fails_closed() -> None:
    client = connect("redis://127.0.0.1:9/0", timeout=0.5)
    try:
        with pytest.raises(BackendUnavailable):
            RedisSpentStore(client).mark_spent("n", NOW + 1, NOW)
        with pytest.raises(BackendUnavailable):
            RedisRevocationStore(client).revoke_subject(bytes(32), NOW)
    finally:
        client.close()


# --- the public surface -------------------------------------------------------------------------

MODULES = [
    "stave.auth",
    "stave.auth.errors",
    "stave.auth.encoding",
    "stave.auth.spent",
    "stave.auth.pow",
    "stave.auth.credentials",
    "stave.auth.ratelimit",
    "stave.auth.redis",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_exactly_the_public_definitions(name: str) -> None:
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"
    for item in module.__all__:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"
    defined_here = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", None) == name
    }
    assert defined_here <= set(module.__all__), f"public but not exported: {defined_here - set(module.__all__)}"


def test_package_does_not_need_redis() -> None:
    """Redis is an optional extra: only stave.auth.redis may import it."""
    code = "import sys, stave.auth.credentials, stave.auth.pow, stave.auth.ratelimit; print('redis' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_error_tree_and_prefixes() -> None:
    for error, prefix, status in [
        (PowError, "pow", 401),
        (CredentialError, "auth-required", 401),
        (AccessDenied, "restricted", 403),
    ]:
        assert issubclass(error, AuthError)
        assert issubclass(error, VerificationError)
        assert str(error("code", "detail")) == f"{prefix}: detail"
        assert error.http_status == status
    assert issubclass(RateLimited, AuthError)
    assert issubclass(AuthError, StaveError)
    assert not issubclass(RateLimited, VerificationError)  # the same request passes later
    assert str(RateLimited("x", "slow down", 2.5)) == "rate-limited: slow down"
    assert RateLimited("x", "slow down", 2.5).retry_after_header == "3"
