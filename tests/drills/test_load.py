"""Load drill: 32 concurrent clients submit for a bounded time; every acknowledged event is then
retrievable, verified, in the log exactly once and provable, and nothing unacknowledged appears.

On embedded defaults (SQLite, two local directories) and on PostgreSQL + Redis + SeaweedFS.
The short versions run in ``make test``; the ``drill`` ones (longer, more events) in ``make drill``.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from tests.drills.toolkit import (
    Attempt,
    Load,
    Outcome,
    check_invariants,
    check_online,
    drill_server,
    new_database,
    record,
    s3_url,
    signed_events,
)
from tests.servers import PostgresServer, RedisServer, SeaweedServer


def load_drill(tmp_path: Path, name: str, count: int, seconds: float, env: dict[str, str] | None = None) -> None:
    events = signed_events(1_000_000 if "scale" not in name else 1_100_000, count)
    server = drill_server(tmp_path / "data", env).start()
    try:
        outcome = Load(server.url, events, clients=32, seconds=seconds).run()
        acknowledged = outcome.acknowledged
        # Nothing goes wrong under plain load: every event submitted in time is acknowledged.
        assert set(outcome.statuses()) <= {201}, outcome.statuses()
        assert len(acknowledged) >= min(count, 100), outcome.figures()
        checked = check_invariants(server, outcome, env=env)
    finally:
        server.stop()
    figures = {**outcome.figures(), **checked.figures()}
    print(f"\n{name}: {figures}")
    record(name, figures)


def test_load_on_embedded_defaults(tmp_path: Path) -> None:
    load_drill(tmp_path, "load-embedded-short", count=400, seconds=30)


def test_the_checker_catches_a_lost_moved_or_unacknowledged_event(tmp_path: Path) -> None:
    """The checker is only worth its passes if it fails on each kind of violation."""
    server = drill_server(tmp_path / "data").start()
    try:
        outcome = Load(server.url, signed_events(1_050_000, 64), clients=8, seconds=30).run()
        assert len(outcome.acknowledged) == 64
        check_online(server.url, outcome)

        first_seq = outcome.attempts[0].seq
        assert first_seq is not None
        moved = dataclasses.replace(outcome.attempts[0], seq=first_seq + 1000)
        with pytest.raises(AssertionError, match="missing or moved"):
            check_online(server.url, Outcome(outcome.sent, [moved, *outcome.attempts[1:]]))
        lost_id = signed_events(1_059_999, 1)[0]  # acknowledged (say), never stored
        lost = Attempt(0.0, lost_id.id, 201, seq=64)
        with pytest.raises(AssertionError, match="missing or moved"):
            check_online(server.url, Outcome({**outcome.sent, lost_id.id: b""}, [*outcome.attempts, lost]))
        refused = dataclasses.replace(outcome.attempts[0], status=503, seq=None)  # the log holds a refused event
        with pytest.raises(AssertionError, match="never acknowledged and not in flight"):
            check_online(server.url, Outcome(outcome.sent, [refused, *outcome.attempts[1:]]))
        unanswered = dataclasses.replace(refused, status=-1)  # …which is allowed if its request died mid-flight
        check_online(server.url, Outcome(outcome.sent, [unanswered, *outcome.attempts[1:]]))
    finally:
        server.stop()


@pytest.mark.drill
@pytest.mark.timeout(1800)
def test_load_drill_on_embedded_defaults(tmp_path: Path) -> None:
    load_drill(tmp_path, "load-embedded", count=20_000, seconds=60)


def scale_env(tmp_path: Path, postgres: PostgresServer, redis: RedisServer, s3: SeaweedServer) -> dict[str, str]:
    return {
        "STAVE_DATABASE_URL": new_database(postgres),
        "STAVE_STORE_DURABLE": f"file://{tmp_path}/disk {s3_url(s3, f'drill-{uuid.uuid4().hex[:8]}')}",
        "STAVE_STORE_CACHE": redis.url,
        "STAVE_AUTH_REDIS": redis.url,
    }


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.s3
def test_load_on_postgres_redis_seaweedfs(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer, s3_server: SeaweedServer
) -> None:
    env = scale_env(tmp_path, postgres_server, redis_server, s3_server)
    load_drill(tmp_path, "load-scale-short", count=300, seconds=30, env=env)


@pytest.mark.drill
@pytest.mark.timeout(1800)
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.s3
def test_load_drill_on_postgres_redis_seaweedfs(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer, s3_server: SeaweedServer
) -> None:
    env = scale_env(tmp_path, postgres_server, redis_server, s3_server)
    load_drill(tmp_path, "load-scale", count=10_000, seconds=60, env=env)
