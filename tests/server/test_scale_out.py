"""Two `stave serve` processes on one PostgreSQL, Redis and SeaweedFS: one log, no gaps, no repeats."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stave.client import StaveClient
from stave.db import open_database
from tests.server.process import StaveServer
from tests.servers import PostgresServer, RedisServer, SeaweedServer
from tests.store.events import event

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


@pytest.fixture
def cluster(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer, s3_server: SeaweedServer
) -> Iterator[list[StaveServer]]:
    name = f"stave_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    s3 = s3_server
    s3_url = (
        f"s3://scale-{uuid.uuid4().hex[:8]}/events?endpoint={s3.endpoint_url}&region={s3.region}"
        f"&access_key={s3.access_key}&secret_key={s3.secret_key}&create_bucket=1"
    )
    env = {
        "STAVE_DATABASE_URL": postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}",
        "STAVE_STORE_DURABLE": f"file://{tmp_path}/shared-disk {s3_url}",
        "STAVE_STORE_CACHE": redis_server.url,
        "STAVE_AUTH_REDIS": redis_server.url,
    }
    shared = tmp_path / "data"  # one data dir: the log key and the credential issuer key are shared
    servers = [StaveServer(shared, env=env), StaveServer(shared, env=env)]
    for server in servers:
        server.log_path = tmp_path / f"server-{server.port}.log"
        server.start()
    yield servers
    for server in servers:
        server.stop()


def test_two_servers_sequence_one_log(cluster: list[StaveServer]) -> None:
    results: dict[int, list[tuple[str, int]]] = {}
    errors: list[BaseException] = []

    def submit(worker: int) -> None:
        try:
            with StaveClient(cluster[worker % 2].url) as client:
                mine = [client.submit(event(960_000 + worker * 100 + i)) for i in range(25)]
                shared = [client.submit(event(969_000 + i)) for i in range(10)]  # every worker sends these
                results[worker] = [(s.id, s.seq) for s in mine + shared if s.seq is not None]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    positions: dict[str, set[int]] = {}
    for items in results.values():
        for event_id, seq in items:
            positions.setdefault(event_id, set()).add(seq)
    assert all(len(seqs) == 1 for seqs in positions.values())  # one position per event, whoever asked
    assert len(positions) == 4 * 25 + 10
    listed = httpx.get(f"{cluster[1].url}/events", params={"limit": 1000}).json()["events"]
    assert [item["seq"] for item in listed] == list(range(len(positions)))  # no gap, no repeat
    assert {item["id"]: item["seq"] for item in listed} == {k: next(iter(v)) for k, v in positions.items()}
    for event_id in list(positions)[:10]:  # written through one server, read through the other
        for server in cluster:
            assert httpx.get(f"{server.url}/events/{event_id}").status_code == 200
