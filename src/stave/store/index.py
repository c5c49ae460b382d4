"""The store's index in SQL: which blobs are stored, and where each copy is."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy import delete, func, select

from stave.db import Database, driver_sql, in_list
from stave.db.schema import blob_copies, blobs
from stave.store.base import BlobInfo, BlobKey, Namespace

__all__ = ["CopyRecord", "StoreIndex", "StoredBlob"]

STORED = "stored"


@dataclass(frozen=True, slots=True)
class CopyRecord:
    backend: str
    state: str  # ok | failed | missing | corrupt
    locator: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class StoredBlob:
    key: BlobKey
    size: int
    created_at: int | None
    copies: dict[str, CopyRecord]


def _copy_row(key: BlobKey, copy: CopyRecord, now: int) -> dict[str, object]:
    return {
        "namespace": key.namespace.value,
        "digest": key.digest,
        "backend": copy.backend,
        "state": copy.state,
        "locator": copy.locator,
        "detail": copy.detail,
        "updated_at": now,
    }


def _now_ms() -> int:
    return int(time.time() * 1000)


# The ingest path's statements, as plain driver SQL (``?`` placeholders; see ``driver_sql``).
_STORED: Final = "SELECT digest, size, created_at FROM blobs WHERE namespace = ? AND state = 'stored' AND digest IN "
_COPIES: Final = "SELECT digest, backend, state, locator, detail FROM blob_copies WHERE namespace = ? AND digest IN "
_INSERT_BLOBS: Final = (
    "INSERT INTO blobs (namespace, digest, size, state, event_type, author, created_at, stored_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, digest) DO NOTHING"
)
_UPSERT_COPIES: Final = (
    "INSERT INTO blob_copies (namespace, digest, backend, state, locator, detail, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, digest, backend) DO UPDATE SET "
    "state = excluded.state, detail = excluded.detail, updated_at = excluded.updated_at, "
    # a record without a locator (a failure) keeps the locator known before
    "locator = COALESCE(excluded.locator, blob_copies.locator)"
)


class StoreIndex:
    def __init__(self, database: Database) -> None:
        self.database = database
        blob_insert = database.insert(blobs)
        self._insert_blobs = blob_insert.on_conflict_do_nothing(index_elements=["namespace", "digest"])
        copy_insert = database.insert(blob_copies)
        self._upsert_copies = copy_insert.on_conflict_do_update(
            index_elements=["namespace", "digest", "backend"],
            set_={
                "state": copy_insert.excluded.state,
                "detail": copy_insert.excluded.detail,
                "updated_at": copy_insert.excluded.updated_at,
                # a record without a locator (a failure) keeps the locator known before
                "locator": func.coalesce(copy_insert.excluded.locator, blob_copies.c.locator),
            },
        )

    def stored(self, keys: Sequence[BlobKey]) -> dict[BlobKey, StoredBlob]:
        """The stored blobs among ``keys``, with their copies."""
        if not keys:
            return {}
        by_namespace: dict[Namespace, list[str]] = {}
        for key in keys:
            by_namespace.setdefault(key.namespace, []).append(key.digest)
        out: dict[BlobKey, StoredBlob] = {}
        # Plain driver SQL: every ingest batch asks this, and SQLAlchemy's expanding IN cost more
        # than the query.
        with self.database.engine.connect() as connection:
            for namespace, digests in by_namespace.items():
                for chunk in _chunks(digests, 500):
                    params = (namespace.value, *chunk)
                    rows = connection.exec_driver_sql(driver_sql(connection, _STORED + in_list(len(chunk))), params)
                    found = 0
                    for digest, size, created_at in rows:
                        out[BlobKey(namespace, digest)] = StoredBlob(BlobKey(namespace, digest), size, created_at, {})
                        found += 1
                    if not found:
                        continue
                    copies = connection.exec_driver_sql(driver_sql(connection, _COPIES + in_list(len(chunk))), params)
                    for digest, backend, state, locator, detail in copies:
                        blob = out.get(BlobKey(namespace, digest))
                        if blob is not None:
                            blob.copies[backend] = CopyRecord(backend, state, locator, detail)
        return out

    def get(self, key: BlobKey) -> StoredBlob | None:
        return self.stored([key]).get(key)

    def record_stored(self, entries: Sequence[tuple[BlobKey, int, BlobInfo, list[CopyRecord]]]) -> None:
        """Mark blobs stored with their copies, in one transaction (one fsync); idempotent."""
        if not entries:
            return
        now = _now_ms()
        blob_rows = [
            (key.namespace.value, key.digest, size, STORED, info.event_type, info.author, info.created_at, now)
            for key, size, info, _ in entries
        ]
        copy_rows = [
            (key.namespace.value, key.digest, copy.backend, copy.state, copy.locator, copy.detail, now)
            for key, _, _, copies in entries
            for copy in copies
        ]
        # No fsync of its own: the copies are the truth, and a row lost with power is found again
        # by the replicated store's probe on a miss (and by scrub).
        with self.database.write(durable=False) as connection:
            connection.exec_driver_sql(driver_sql(connection, _INSERT_BLOBS), blob_rows)
            if copy_rows:
                connection.exec_driver_sql(driver_sql(connection, _UPSERT_COPIES), copy_rows)

    def record_copies(self, key: BlobKey, copies: Iterable[CopyRecord]) -> None:
        rows = [_copy_row(key, copy, _now_ms()) for copy in copies]
        if rows:
            with self.database.write(durable=False) as connection:
                connection.execute(self._upsert_copies, rows)

    def pending_repairs(self, limit: int = 1000) -> list[tuple[BlobKey, str, str]]:
        """Copies known to be bad or missing: (key, backend, state)."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(blob_copies.c.namespace, blob_copies.c.digest, blob_copies.c.backend, blob_copies.c.state)
                .where(blob_copies.c.state != "ok")
                .limit(limit)
            ).all()
        return [(BlobKey(Namespace(n), d), backend, state) for n, d, backend, state in rows]

    def iter_stored(self, namespace: Namespace, *, before: int | None = None, batch: int = 1000) -> Iterator[str]:
        """Digests of stored blobs in a namespace (created before ``before``, if given), in order."""
        last = ""
        while True:
            query = (
                select(blobs.c.digest)
                .where(blobs.c.namespace == namespace.value, blobs.c.state == STORED, blobs.c.digest > last)
                .order_by(blobs.c.digest)
                .limit(batch)
            )
            if before is not None:
                query = query.where(blobs.c.created_at < before)
            with self.database.engine.connect() as connection:
                digests = list(connection.execute(query).scalars())
            yield from digests
            if len(digests) < batch:
                return
            last = digests[-1]

    def count(self, namespace: Namespace) -> int:
        with self.database.engine.connect() as connection:
            value = connection.execute(
                select(func.count())
                .select_from(blobs)
                .where(blobs.c.namespace == namespace.value, blobs.c.state == STORED)
            ).scalar_one()
        return int(value)

    def forget(self, key: BlobKey) -> None:
        """Remove a blob and its copies from the index (tests and orphan cleanup)."""
        with self.database.write() as connection:
            for table in (blob_copies, blobs):
                connection.execute(
                    delete(table).where(table.c.namespace == key.namespace.value, table.c.digest == key.digest)
                )


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
