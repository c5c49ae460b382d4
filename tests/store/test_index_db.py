"""The SQL index: migrations equal the metadata, and the same code runs on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stave.db import metadata, open_database
from stave.store import BlobInfo, BlobKey, Namespace, StoreIndex
from stave.store.index import CopyRecord
from tests.store.events import event


def test_migrations_create_exactly_the_declared_schema(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/db.sqlite")
    with database.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []


def test_sqlite_is_durable_mode(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/db.sqlite")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    with database.write(durable=False) as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL: no fsync
    with database.write() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2


def _exercise(index: StoreIndex) -> None:
    keys = [BlobKey.event(event(i).id) for i in range(3)]
    index.record_stored(
        [
            (
                key,
                100 + i,
                BlobInfo(event_type="VOTE", created_at=1000 + i),
                [CopyRecord("a", "ok"), CopyRecord("b", "failed", detail="x")],
            )
            for i, key in enumerate(keys)
        ]
    )
    stored = index.stored([*keys, BlobKey.event(event(9).id)])
    assert set(stored) == set(keys)
    assert stored[keys[0]].copies["b"].state == "failed"
    index.record_copies(keys[0], [CopyRecord("b", "ok", locator="cid")])
    assert index.get(keys[0]).copies["b"] == CopyRecord("b", "ok", "cid", None)  # type: ignore[union-attr]
    assert len(index.pending_repairs()) == 2
    assert list(index.iter_stored(Namespace.EVENTS, before=1002, batch=1)) == sorted(k.digest for k in keys[:2])
    assert index.count(Namespace.EVENTS) == 3
    index.record_stored([(keys[0], 100, BlobInfo(), [CopyRecord("a", "ok")])])  # idempotent
    assert index.count(Namespace.EVENTS) == 3


def test_index_on_sqlite(tmp_path: Path) -> None:
    _exercise(StoreIndex(open_database(f"sqlite:///{tmp_path}/db.sqlite")))


@pytest.mark.postgres
def test_index_on_postgresql(postgres_server) -> None:
    name = f"stave_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    database = open_database(postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}")
    assert database.dialect == "postgresql"
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    _exercise(StoreIndex(database))
    database.close()
