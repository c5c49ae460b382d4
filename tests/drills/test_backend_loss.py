"""Backend-loss drill: stop Redis, then one durable backend, then a second, during load.

The server stores on three durable backends (a local directory and two SeaweedFS servers) with
``min_redundancy = 2`` and a Redis cache. While 32 clients submit:

- Redis stops: ingest goes on (a cache is never counted as a copy);
- SeaweedFS A stops: ingest goes on (local + B still make the quorum);
- SeaweedFS B stops: every write is refused with 503 and Retry-After (one copy is not a
  quorum), health says 503, reads of stored events are still served from the local copy;
- B, A and Redis come back: ingest resumes.

Afterwards every invariant holds, and ``stave store scrub`` repairs what the outages left
missing: before it, A and B lack the copies of events acknowledged while they were down; after
it, every acknowledged event has a copy on every backend. The only copies outside the log are
the strays of refused writes on the local directory (reported by scrub as orphaned, never served).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from stave.db import open_database
from stave.store import BlobKey, QuorumError, ReplicatedStore, StoreIndex, open_store
from stave.store.local import LocalStore
from tests.drills.toolkit import (
    Load,
    Outcome,
    check_invariants,
    check_reads,
    drill_server,
    local_objects,
    record,
    s3_objects,
    s3_url,
    signed_events,
)
from tests.servers import RedisServer, SeaweedServer

pytestmark = [pytest.mark.redis, pytest.mark.s3]


@pytest.fixture
def second_s3_server() -> Iterator[SeaweedServer]:
    """A second SeaweedFS of this test alone (the fixtures give one fresh server per test)."""
    server = SeaweedServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0


def backend_loss_drill(
    tmp_path: Path, name: str, redis: RedisServer, s3_a: SeaweedServer, s3_b: SeaweedServer, phase_seconds: float
) -> None:
    buckets = {"s3a": f"drill-a-{uuid.uuid4().hex[:8]}", "s3b": f"drill-b-{uuid.uuid4().hex[:8]}"}
    local = tmp_path / "local"
    env = {
        "STAVE_STORE_DURABLE": " ".join(
            [f"file://{local}", s3_url(s3_a, buckets["s3a"], timeout=2), s3_url(s3_b, buckets["s3b"], timeout=2)]
        ),
        "STAVE_STORE_CACHE": f"{redis.url}?timeout=1",
        "STAVE_STORE_MIN_REDUNDANCY": "2",
        "STAVE_STORE_TIMEOUT": "3",
    }
    server = drill_server(tmp_path / "data", env).start()
    phases: list[Phase] = []

    def phase(label: str, action: Callable[[], object] = lambda: None) -> None:
        """End the current phase, act (stop or start backends), then begin the next."""
        if phases:
            phases[-1].end = time.monotonic()
        action()
        phases.append(Phase(label, time.monotonic()))

    def restart_all() -> None:
        s3_b.start()
        s3_a.start()
        redis.start()

    try:
        events = signed_events(3_000_000, 30_000 if phase_seconds > 10 else 5_000)
        load = Load(server.url, events, clients=32, seconds=phase_seconds * 5 + 60, backoff=0.2).start()
        phase("all up")
        load.wait_for_acks(100)
        # Each phase lasts at least phase_seconds and until enough requests sent in it were answered.
        phase("redis down", redis.stop)
        wait_for_answers(load, phases[-1].start, 201, 10, phase_seconds)
        phase("redis, s3a down", s3_a.stop)
        wait_for_answers(load, phases[-1].start, 201, 10, phase_seconds)
        phase("redis, s3a, s3b down: no quorum", s3_b.stop)
        wait_for_answers(load, phases[-1].start, 503, 32, phase_seconds)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            health = http.get("/health")
            assert health.status_code == 503, health.text
            assert int(health.headers["retry-after"]) >= 1
        acked_so_far = {a.event_id: load.outcome.sent[a.event_id] for a in list(load.outcome.attempts)[:50] if a.seq}
        assert set(check_reads(server.url, acked_so_far)) == {200}, "stored events must be read from the local copy"
        phase("all back", restart_all)
        resumed = load.acknowledged_count()
        load.wait_for_acks(resumed + 10 * int(phase_seconds), within=60)
        time.sleep(1)
        load.stop()
        outcome = load.join()
        phases[-1].end = time.monotonic()

        per_phase = {p.name: summarise(outcome.sent_between(p.start, p.end)) for p in phases}
        for index, current in enumerate(phases):
            # Sent after the phase's action completed and answered before the next one began: handled
            # entirely while exactly these backends were down (attempts under way at a change may go either way).
            seen = Outcome(
                outcome.sent, [a for a in outcome.attempts if a.sent_at >= current.start and a.at < current.end]
            )
            if index == 3:  # no quorum: every write refused, clearly, with a time to come back
                refusals = [a for a in seen.attempts if a.status != 503]
                assert not refusals, f"{current.name}: {refusals[:3]}; phase from {current.start}"
                assert seen.attempts, f"{current.name}: no attempt at all"
                assert all(a.retry_after and int(a.retry_after) >= 1 for a in seen.attempts)
                for attempt in seen.attempts:  # says why, naming every backend that failed
                    assert "durable copies" in attempt.detail, attempt.detail
                    assert buckets["s3a"] in attempt.detail, attempt.detail
                    assert buckets["s3b"] in attempt.detail, attempt.detail
            else:  # quorum holds (or holds again): every write acknowledged, and ingest goes on
                bad = [a for a in seen.attempts if a.status != 201]
                assert not bad, f"{current.name}: {seen.statuses()}; {per_phase}; {bad[0].detail}"
                assert seen.attempts, f"{current.name}: ingest stalled; {per_phase}"
        assert not outcome.unanswered, "no request may die without an answer"

        acknowledged = outcome.acknowledged
        refused = set(outcome.refused)
        before = copies(local, s3_a, s3_b, buckets, acknowledged)
        assert before["local"] == len(acknowledged), "every acknowledged event has its local copy"
        assert before["s3a"] < len(acknowledged), "s3a missed the events acknowledged while it was down"
        strays = set(local_objects(local)) - set(acknowledged)
        assert strays <= refused, "a copy outside the log is a refused write's, nothing else"
        checked = check_invariants(server, outcome, env=env, expect_repair=True, allowed_orphans=len(strays))
        # the servers are still up here: the scrub above repaired onto them
        after = copies(local, s3_a, s3_b, buckets, acknowledged)
        assert after == dict.fromkeys(("local", "s3a", "s3b"), len(acknowledged)), after
    finally:
        server.stop()
    figures = {
        **outcome.figures(),
        **checked.figures(),
        "phases": per_phase,
        "copies_before_scrub": before,
        "copies_after_scrub": after,
        "stray_copies_of_refused_writes": len(strays),
    }
    print(f"\n{name}: {figures}")
    record(name, figures)


def wait_for_answers(load: Load, since: float, status: int, count: int, seconds: float) -> None:
    """Wait ``seconds``, and longer if needed until ``count`` requests sent since ``since`` got ``status``."""
    time.sleep(seconds)
    load.wait_until(
        lambda attempts: sum(a.sent_at >= since and a.status == status for a in attempts) >= count,
        f"{count} answers {status} to requests sent since the phase began",
    )


def summarise(outcome: Outcome) -> dict[str, Any]:
    statuses = outcome.statuses()
    return {
        "seconds": round(outcome.seconds, 2),
        "acknowledged": statuses.get(201, 0),
        "acks_per_second": round(statuses.get(201, 0) / outcome.seconds, 1) if outcome.seconds else 0.0,
        "refused_503": statuses.get(503, 0),
        "other": sum(count for status, count in statuses.items() if status not in (201, 503)),
        **outcome.latency(),
    }


def copies(
    local: Path, s3_a: SeaweedServer, s3_b: SeaweedServer, buckets: dict[str, str], acknowledged: dict[str, int]
) -> dict[str, int]:
    """How many acknowledged events have a copy on each backend."""
    held = {
        "local": set(local_objects(local)),
        "s3a": set(s3_objects(s3_a, buckets["s3a"])),
        "s3b": set(s3_objects(s3_b, buckets["s3b"])),
    }
    return {name: len(ids & set(acknowledged)) for name, ids in held.items()}


def test_backend_loss_during_load(
    tmp_path: Path, fresh_redis_server: RedisServer, fresh_s3_server: SeaweedServer, second_s3_server: SeaweedServer
) -> None:
    backend_loss_drill(tmp_path, "backend-loss-short", fresh_redis_server, fresh_s3_server, second_s3_server, 2)


@pytest.mark.drill
@pytest.mark.timeout(1800)
def test_backend_loss_drill(
    tmp_path: Path, fresh_redis_server: RedisServer, fresh_s3_server: SeaweedServer, second_s3_server: SeaweedServer
) -> None:
    backend_loss_drill(tmp_path, "backend-loss", fresh_redis_server, fresh_s3_server, second_s3_server, 20)


def test_a_hung_cache_does_not_hold_up_acknowledgements(tmp_path: Path, fresh_redis_server: RedisServer) -> None:
    cache_timeout = 0.5
    store = ReplicatedStore(
        [LocalStore(tmp_path / "a", name="a"), LocalStore(tmp_path / "b", name="b")],
        StoreIndex(open_database(f"sqlite:///{tmp_path}/stave.db")),
        cache=open_store(f"{fresh_redis_server.url}?timeout={cache_timeout}", name="redis"),
        min_redundancy=2,
    )
    pid = fresh_redis_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # hung: it accepts connections and never answers
    try:
        began = time.monotonic()
        results = store.put_events(signed_events(3_900_000, 6))
        waited = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
        store.close()
    assert all(not isinstance(result, QuorumError) for result in results)
    # The cache is never a copy: the acknowledgement must not wait for it (here: not even two timeouts).
    assert waited < 2 * cache_timeout, f"6 events acknowledged after {waited:.1f} s with a hung cache"


def test_a_refused_write_whose_copies_land_later_is_adopted_and_a_retry_is_idempotent(tmp_path: Path) -> None:
    """A decision, not a bug (docs/storage/README.md): a write reported failed can still land everywhere
    (a backend slower than the timeout). Its quorum of verified, content-addressed copies is adopted like
    any copy the index does not know, because that is also what keeps readable an acknowledged write
    whose index row was lost; refusing to adopt it would risk that loss. The client was told "not
    stored", so it retries; the retry is idempotent, and only then is the event sequenced (the server
    reads through the log, so nothing unsequenced is ever listed or served over HTTP)."""
    backends = [LocalStore(tmp_path / "a", name="a"), LocalStore(tmp_path / "b", name="b")]
    store = ReplicatedStore(
        backends, StoreIndex(open_database(f"sqlite:///{tmp_path}/stave.db")), min_redundancy=2, timeout=1e-6
    )
    try:
        refused = signed_events(3_950_000, 1)[0]
        [result] = store.put_events([refused])
        assert isinstance(result, QuorumError), result  # the caller is told: not stored
        key = BlobKey.event(refused.id)
        deadline = time.monotonic() + 10
        while not all(backend.has(key) for backend in backends):  # the timed-out writes finish anyway
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert store.get_event(refused.id) == refused.canonical_bytes()  # adopted: verified copies at quorum
        store.timeout = 10.0
        [retried] = store.put_events([refused])
        assert not isinstance(retried, QuorumError)
        assert retried.duplicate
    finally:
        store.close()
