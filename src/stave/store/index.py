"""The store's index in SQL: which blobs are stored, and where each copy is."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, and_, delete, func, insert, select, tuple_, update

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


def _now_ms() -> int:
    return int(time.time() * 1000)


class StoreIndex:
    def __init__(self, database: Database) -> None:
        self.database = database

    def stored(self, keys: Sequence[BlobKey]) -> dict[BlobKey, StoredBlob]:
        """The stored blobs among ``keys``, with their copies."""
        if not keys:
            return {}
        wanted = [(key.namespace.value, key.digest) for key in keys]
        out: dict[BlobKey, StoredBlob] = {}
        with self.database.engine.connect() as connection:
            for chunk in _chunks(wanted, 500):
                rows = connection.execute(
                    select(blobs.c.namespace, blobs.c.digest, blobs.c.size, blobs.c.created_at).where(
                        tuple_(blobs.c.namespace, blobs.c.digest).in_(chunk), blobs.c.state == STORED
                    )
                ).all()
                for namespace, digest, size, created_at in rows:
                    key = BlobKey(Namespace(namespace), digest)
                    out[key] = StoredBlob(key, size, created_at, {})
                if not rows:
                    continue
                copies = connection.execute(
                    select(
                        blob_copies.c.namespace,
                        blob_copies.c.digest,
                        blob_copies.c.backend,
                        blob_copies.c.state,
                        blob_copies.c.locator,
                        blob_copies.c.detail,
                    ).where(tuple_(blob_copies.c.namespace, blob_copies.c.digest).in_(chunk))
                ).all()
                for namespace, digest, backend, state, locator, detail in copies:
                    blob = out.get(BlobKey(Namespace(namespace), digest))
                    if blob is not None:
                        blob.copies[backend] = CopyRecord(backend, state, locator, detail)
        return out

    def get(self, key: BlobKey) -> StoredBlob | None:
        return self.stored([key]).get(key)

    def record_stored(self, entries: Sequence[tuple[BlobKey, int, BlobInfo, list[CopyRecord]]]) -> None:
        """Mark blobs stored with their copies, in one transaction (one fsync)."""
        if not entries:
            return
        now = _now_ms()
        with self.database.write() as connection:
            existing = {
                (namespace, digest)
                for namespace, digest in connection.execute(
                    select(blobs.c.namespace, blobs.c.digest).where(
                        tuple_(blobs.c.namespace, blobs.c.digest).in_(
                            [(key.namespace.value, key.digest) for key, _, _, _ in entries]
                        )
                    )
                )
            }
            rows = [
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
                if (key.namespace.value, key.digest) not in existing
            ]
            if rows:
                connection.execute(insert(blobs), rows)
            for key, _, _, copies in entries:
                self._upsert_copies(connection, key, copies, now)

    def record_copies(self, key: BlobKey, copies: Iterable[CopyRecord]) -> None:
        with self.database.write() as connection:
            self._upsert_copies(connection, key, list(copies), _now_ms())

    @staticmethod
    def _upsert_copies(connection: Connection, key: BlobKey, copies: Sequence[CopyRecord], now: int) -> None:
        for copy in copies:
            match = and_(
                blob_copies.c.namespace == key.namespace.value,
                blob_copies.c.digest == key.digest,
                blob_copies.c.backend == copy.backend,
            )
            values = {"state": copy.state, "detail": copy.detail, "updated_at": now}
            if copy.locator is not None:
                values["locator"] = copy.locator
            if connection.execute(update(blob_copies).where(match).values(**values)).rowcount == 0:
                connection.execute(
                    insert(blob_copies).values(
                        namespace=key.namespace.value,
                        digest=key.digest,
                        backend=copy.backend,
                        locator=copy.locator,
                        **values,
                    )
                )

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
