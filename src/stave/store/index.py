"""The store's index in SQL: which blobs are stored, and where each copy is."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import bindparam, delete, func, select

from stave.db import Database
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


# Built once: SQLAlchemy caches the compiled form of a statement it has seen.
_STORED = select(blobs.c.digest, blobs.c.size, blobs.c.created_at).where(
    blobs.c.namespace == bindparam("namespace"),
    blobs.c.digest.in_(bindparam("digests", expanding=True)),
    blobs.c.state == STORED,
)
_COPIES = select(
    blob_copies.c.digest, blob_copies.c.backend, blob_copies.c.state, blob_copies.c.locator, blob_copies.c.detail
).where(
    blob_copies.c.namespace == bindparam("namespace"), blob_copies.c.digest.in_(bindparam("digests", expanding=True))
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
        with self.database.engine.connect() as connection:
            for namespace, digests in by_namespace.items():
                for chunk in _chunks(digests, 500):
                    params = {"namespace": namespace.value, "digests": list(chunk)}
                    rows = connection.execute(_STORED, params).all()
                    for digest, size, created_at in rows:
                        key = BlobKey(namespace, digest)
                        out[key] = StoredBlob(key, size, created_at, {})
                    if not rows:
                        continue
                    for digest, backend, state, locator, detail in connection.execute(_COPIES, params):
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
            {
                "namespace": key.namespace.value,
                "digest": key.digest,
                "size": size,
                "state": STORED,
                "event_type": info.event_type,
                "author": info.author,
                "created_at": info.created_at,
                "stored_at": now,
            }
            for key, size, info, _ in entries
        ]
        copy_rows = [_copy_row(key, copy, now) for key, _, _, copies in entries for copy in copies]
        # No fsync of its own: the copies are the truth, and a row lost with power is found again
        # by the replicated store's probe on a miss (and by scrub).
        with self.database.write(durable=False) as connection:
            connection.execute(self._insert_blobs, blob_rows)
            if copy_rows:
                connection.execute(self._upsert_copies, copy_rows)

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
