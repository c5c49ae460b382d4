"""SqliteStore (events in SQLite, media as files) against the contract, plus what SQLite adds:
a batch is one transaction, a crash keeps every acknowledged batch, a full database writes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stave.config import load_settings
from stave.db import open_database
from stave.errors import BackendUnavailable, ConfigError, IntegrityError, StorageError
from stave.store import BlobInfo, BlobKey, BlobStore, Namespace, ReplicatedStore, StoreIndex, open_store
from stave.store.sqlite import DATABASE_NAME, SqliteStore
from tests.store.contract import BlobStoreContract
from tests.store.events import event

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    opened = SqliteStore(tmp_path / "store")
    yield opened
    opened.close()


@pytest.fixture
def corrupt():
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        assert isinstance(store, SqliteStore)
        if key.namespace is not Namespace.EVENTS:
            store.path(key).write_bytes(data)
            return
        with sqlite3.connect(store.database) as db:  # behind the store's back, as bit rot would
            db.execute("UPDATE events SET data = ? WHERE id = ?", (data, bytes.fromhex(key.digest)))
        db.close()

    return overwrite


class TestSqliteStore(BlobStoreContract):
    seed = 7


def _votes(first: int, count: int) -> list[tuple[BlobKey, bytes, BlobInfo]]:
    return [
        (BlobKey.event(e.id), e.canonical_bytes(), BlobInfo()) for e in (event(n) for n in range(first, first + count))
    ]


def test_events_live_in_one_database_and_media_in_files(store: SqliteStore) -> None:
    items = _votes(1, 3)
    assert store.put_many(items) == [None, None, None]
    media = b"cover art"
    media_key = BlobKey.media(hashlib.sha256(media).hexdigest())
    store.put(media_key, media)
    assert not (store.root / "events").exists()
    assert store.path(media_key).read_bytes() == media
    with sqlite3.connect(store.database) as db:
        rows = dict(db.execute("SELECT id, data FROM events"))
    db.close()
    assert rows == {bytes.fromhex(key.digest): data for key, data, _ in items}
    with pytest.raises(StorageError, match="not in files"):
        store.path(items[0][0])
    assert sorted(store.list(Namespace.EVENTS)) == sorted(key.digest for key, _, _ in items)


def test_listing_pages_through_many_events(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stave.store.sqlite._LIST_CHUNK", 4)
    items = _votes(10, 9)
    store.put_many(items)
    assert list(store.list(Namespace.EVENTS)) == sorted(key.digest for key, _, _ in items)


def test_repair_replaces_a_bad_copy_only_when_asked(store: SqliteStore, corrupt) -> None:
    key, data, _ = _votes(20, 1)[0]
    store.put(key, data)
    corrupt(store, key, None, b"{}")
    store.put(key, data)  # an ordinary write never replaces
    with pytest.raises(IntegrityError):
        store.get(key)
    store.put(key, data, replace=True)
    assert store.get(key) == data


def test_a_full_database_fails_the_whole_batch_and_writes_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store")
    store.put_many(_votes(30, 2))
    with sqlite3.connect(store.database) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    # max_page_count makes SQLite answer SQLITE_FULL, the error a full disk gives.
    store._connection().execute(f"PRAGMA max_page_count = {pages + 1}")
    big = _votes(40, 200)
    results = store.put_many(big)
    assert all(isinstance(result, StorageError) for result in results)
    assert "full" in str(results[0])
    assert not any(store.has(key) for key, _, _ in big)
    assert len(list(store.list(Namespace.EVENTS))) == 2  # what was there is still there, readable
    store.close()


_WRITER = """
import sys
from stave.store.sqlite import SqliteStore
from stave.store import BlobInfo, BlobKey
from tests.store.events import event
store = SqliteStore(sys.argv[1])
for batch in range(10_000):
    events = [event(batch * 20 + n) for n in range(20)]
    store.put_many([(BlobKey.event(e.id), e.canonical_bytes(), BlobInfo()) for e in events])
    print(" ".join(e.id for e in events), flush=True)  # acknowledged: put_many returned
"""


def test_every_acknowledged_batch_survives_a_sigkill(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    directory.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    acknowledged: list[str] = []
    while len(acknowledged) < 200:  # several batches in, then a kill at an arbitrary moment
        line = writer.stdout.readline()
        assert line, "the writer stopped early"
        acknowledged += line.decode().split()
    time.sleep(0.05)
    writer.send_signal(signal.SIGKILL)
    acknowledged += [word for line in writer.stdout.read().decode().splitlines() for word in line.split()]
    writer.stdout.close()
    writer.wait()
    store = SqliteStore(directory)
    with sqlite3.connect(store.database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    stored = set(store.list(Namespace.EVENTS))
    assert set(acknowledged) <= stored
    assert len(stored) % 20 == 0  # whole batches only: each was one transaction
    for event_id in acknowledged[-20:]:
        store.get(BlobKey.event(event_id))  # verified bytes
    store.close()


def test_connections_of_finished_threads_are_closed(store: SqliteStore) -> None:
    key, data, _ = _votes(50, 1)[0]
    store.put(key, data)  # this thread's connection
    seen: list[int] = []

    def read() -> None:
        assert store.get(key) == data
        seen.append(len(store._connections))

    for _ in range(6):
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    # Each new thread's connection closed the ones of the threads that had ended before it:
    # this thread's and its own remain, never one per thread that ever read.
    assert seen == [2] * 6


def test_a_damaged_database_is_a_failing_backend_never_wrong_bytes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store")
    key, data, _ = _votes(60, 1)[0]
    store.put(key, data)
    store.close()
    (tmp_path / "store" / DATABASE_NAME).write_bytes(b"not a database" * 100)
    for name in (f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm"):
        (tmp_path / "store" / name).unlink(missing_ok=True)
    reopened = SqliteStore(tmp_path / "store")
    with pytest.raises(StorageError, match="not a database"):
        reopened.get(key)
    health = reopened.health()
    assert not health.ok
    assert "not a database" in health.detail
    reopened.close()


def test_a_directory_that_cannot_exist_is_a_failing_backend(tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory should be")
    store = SqliteStore(blocked / "store")
    key, data, _ = _votes(70, 1)[0]
    with pytest.raises(StorageError):
        store.put(key, data)
    assert not store.health().ok


def test_a_locked_database_is_a_transient_failure(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store")
    key, data, _ = _votes(80, 1)[0]
    store.put(key, data)
    store._connection().execute("PRAGMA busy_timeout = 50")
    holder = sqlite3.connect(store.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with pytest.raises(BackendUnavailable, match="locked"):
            store.put(*_votes(81, 1)[0][:2])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.close()


def test_open_from_url(tmp_path: Path) -> None:
    opened = open_store(f"sqlite://{tmp_path}/a")
    assert isinstance(opened, SqliteStore)
    assert opened.fsync
    assert opened.root == tmp_path / "a"
    assert not SqliteStore.from_url(f"sqlite://{tmp_path}/b?fsync=0").fsync
    with pytest.raises(ConfigError, match="absolute"):
        open_store("sqlite://relative/dir")
    with pytest.raises(ConfigError, match="unknown option"):
        open_store(f"sqlite://{tmp_path}/c?sync=fsync")


def test_scrub_reports_a_damaged_database_and_still_checks_the_others(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    backends = [SqliteStore(tmp_path / name, name=name) for name in "abc"]
    replicated = ReplicatedStore(backends, StoreIndex(database), min_redundancy=2)
    try:
        events = [event(n) for n in range(90, 93)]
        replicated.put_events(events)
        backends[2].close()
        (tmp_path / "c" / DATABASE_NAME).write_bytes(b"not a database" * 100)
        for name in (f"{DATABASE_NAME}-wal", f"{DATABASE_NAME}-shm"):
            (tmp_path / "c" / name).unlink(missing_ok=True)
        replicated.durable[2] = SqliteStore(tmp_path / "c", name="c")
        report = replicated.scrub()  # no crash: the damaged backend is reported
        assert report.backends["c"].ok == 0
        assert report.backends["c"].missing + report.backends["c"].corrupt + report.backends["c"].unavailable == 3
        assert report.backends["a"].ok == report.backends["b"].ok == 3
        for one in events:
            assert replicated.get_event(one.id) == one.canonical_bytes()
    finally:
        replicated.close()
        database.close()


def test_the_default_driver_of_a_store_directory(tmp_path: Path) -> None:
    settings = load_settings(environ={"STAVE_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
    assert settings.durable_urls == [f"sqlite://{tmp_path}/store/a", f"sqlite://{tmp_path}/store/b"]
    (tmp_path / "store" / "a" / "events").mkdir(parents=True)  # a directory from the file-driver days
    assert settings.durable_urls[0] == f"file://{tmp_path}/store/a"
    (tmp_path / "store" / "a" / DATABASE_NAME).touch()  # ...but once it holds the database, SQLite it is
    assert settings.durable_urls[0] == f"sqlite://{tmp_path}/store/a"
