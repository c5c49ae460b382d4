"""Local driver with events in SQLite (``sqlite:///var/lib/stave/a``), the embedded default.

A directory holds ``events.sqlite3`` (every event, keyed by its 32-byte id, in one table) and
media as :class:`~stave.store.local.LocalStore` keeps them (sharded files, streamed in chunks:
a gigabyte of audio does not belong in a database page). Events are small and many; a file per
event costs a file creation, an inode and a directory entry in one of 65,536 shard directories,
about 100 µs of kernel time each on this project's test machine, twice per event at a quorum of
two, which bounded batch ingest. Appending a batch's rows to one SQLite write-ahead log and
syncing it once (``synchronous=FULL``) costs a few microseconds an event: strfry (LMDB) and
nostr-rs-relay (SQLite) keep their events the same way, Tessera its entries in bundles.

Crash safety is SQLite's: a batch is one transaction, durable when its commit returns (the WAL
is fsynced), and a crash leaves the batch either whole or absent. A full disk fails the
transaction and writes nothing. Every read is still re-hashed by the caller
(:meth:`BlobStore.get`), so a flipped byte in the database file is a refused copy, never a wrong
event, and a database the file system damaged beyond reading is a failing backend, which the
replicated store reads around and ``stave store scrub`` reports.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from stave.db import in_list
from stave.errors import BlobNotFound, ConfigError, StorageError
from stave.store.base import MAX_EVENT_BYTES, BlobKey, Namespace
from stave.store.local import LocalStore, parse_directory_url

__all__ = ["SqliteStore"]

DATABASE_NAME = "events.sqlite3"
_SCHEMA = "CREATE TABLE IF NOT EXISTS events (id BLOB PRIMARY KEY, data BLOB NOT NULL)"
_LIST_CHUNK = 1000  # ids fetched at a time while listing: a million-event scrub stays small


class SqliteStore(LocalStore):
    scheme = "sqlite"
    cost = 10
    # "database is locked" past the busy timeout, or an I/O error: try again later, like OSError.
    transient_errors = (OSError, TimeoutError, sqlite3.OperationalError)

    def __init__(
        self,
        root: Path | str,
        name: str | None = None,
        *,
        fsync: bool = True,
        max_bytes: int = MAX_EVENT_BYTES,
        media_max_bytes: int = 1 << 30,
    ) -> None:
        super().__init__(
            root, name or f"sqlite:{Path(root)}", fsync=fsync, max_bytes=max_bytes, media_max_bytes=media_max_bytes
        )
        self.database = self.root / DATABASE_NAME
        # One connection per thread (the replicated store's workers, the request threads): SQLite
        # connections are not shared between threads; WAL lets readers run beside the writer.
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> SqliteStore:
        """``sqlite:///absolute/directory`` (``?fsync=0`` only for benchmarks of the code around it)."""
        path, query, fsync = parse_directory_url(url, "sqlite:///absolute/directory")
        unknown = sorted(set(query) - {"fsync"})
        if unknown:
            raise ConfigError(f"store URL {url!r}: unknown option(s) {', '.join(unknown)}; known: fsync")
        return cls(path, name=name, fsync=fsync)

    def path(self, key: BlobKey) -> Path:
        if key.namespace is Namespace.EVENTS:
            raise StorageError(f"{self.name}: events live in {self.database}, not in files")
        return super().path(key)

    # --- the connection of this thread -----------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        if not self.root.is_dir():  # never create a missing mount point's directory behind its back
            raise StorageError(f"{self.root} is not a directory")
        connection = sqlite3.connect(self.database, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'OFF'}")
            # Reads are by id with little reuse, and the OS caches the file: a small page cache
            # per connection keeps a server with dozens of worker threads small.
            connection.execute("PRAGMA cache_size = -256")
            connection.execute(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        with self._lock:
            if self._closed:
                connection.close()
                raise StorageError(f"{self.name}: closed")
            # Worker threads come and go (an idle pool shrinks): close what the dead ones left.
            for thread in [thread for thread in self._connections if not thread.is_alive()]:
                with contextlib.suppress(sqlite3.Error):
                    self._connections.pop(thread).close()
            self._connections[threading.current_thread()] = connection
        self._local.connection = connection
        return connection

    def _forget_connection(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            self._connections.pop(threading.current_thread(), None)
        self._local.connection = None
        with contextlib.suppress(sqlite3.Error):
            connection.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
        super().close()

    # --- the contract ------------------------------------------------------------------------

    def _put_many(self, items: Sequence[tuple[BlobKey, bytes]], replace: bool) -> None:
        media = [(key, data) for key, data in items if key.namespace is not Namespace.EVENTS]
        if media:
            super()._put_many(media, replace)
        rows = [(bytes.fromhex(key.digest), data) for key, data in items if key.namespace is Namespace.EVENTS]
        if not rows:
            return
        connection = self._connection()
        # Same id, same bytes: a second write is a no-op, unless repair asks to replace a bad copy.
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(f"{verb} INTO events (id, data) VALUES (?, ?)", rows)
            connection.execute("COMMIT")  # durable here: the WAL is fsynced (synchronous=FULL)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            if connection.in_transaction:  # the rollback failed too: never reuse a connection holding the lock
                self._forget_connection(connection)
            raise

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        if key.namespace is not Namespace.EVENTS:
            return super()._get(key, locator)
        row = (
            self._connection().execute("SELECT data FROM events WHERE id = ?", (bytes.fromhex(key.digest),)).fetchone()
        )
        if row is None:
            raise BlobNotFound(f"{self.name}: {key} not found")
        data: bytes = row[0]
        return data

    def _get_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | None]:
        events = [key for key in keys if key.namespace is Namespace.EVENTS]
        out: dict[BlobKey, bytes | None] = super()._get_many(
            [key for key in keys if key.namespace is not Namespace.EVENTS]
        )
        connection = self._connection()
        for start in range(0, len(events), 500):  # under SQLite's bound-parameter limit
            chunk = events[start : start + 500]
            found = dict(
                connection.execute(
                    "SELECT id, data FROM events WHERE id IN " + in_list(len(chunk)),  # noqa: S608 - placeholders only
                    [bytes.fromhex(key.digest) for key in chunk],
                )
            )
            out.update((key, found.get(bytes.fromhex(key.digest))) for key in chunk)
        return out

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        if key.namespace is not Namespace.EVENTS:
            return super()._has(key, locator)
        row = self._connection().execute("SELECT 1 FROM events WHERE id = ?", (bytes.fromhex(key.digest),)).fetchone()
        return row is not None

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        if key.namespace is not Namespace.EVENTS:
            super()._delete(key, locator)
            return
        self._connection().execute("DELETE FROM events WHERE id = ?", (bytes.fromhex(key.digest),))

    def _list(self, namespace: Namespace) -> Iterator[str]:
        if namespace is not Namespace.EVENTS:
            yield from super()._list(namespace)
            return
        connection = self._connection()
        after = b""
        while True:  # keyset paging: no read transaction held open across a long scrub
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT ?", (after, _LIST_CHUNK)
                )
            ]
            yield from (value.hex() for value in ids)
            if len(ids) < _LIST_CHUNK:
                return
            after = ids[-1]

    def _health(self) -> str:
        """The file probe of the directory (a full or read-only disk), then the database's write lock."""
        detail = super()._health()
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")  # takes the write lock: a locked or read-only database fails here
        connection.execute("ROLLBACK")
        return detail
