"""The replicated store: every durable backend at once, acknowledged at quorum, self-healing.

Writes go to all durable backends in parallel, each with a timeout. A blob is acknowledged once
``min_redundancy`` durable copies are confirmed; otherwise the write fails with every backend's
reason. **The copies are the truth; the index is an accelerator**: its rows (stored blobs,
where each copy is, which copies failed) are written after the acknowledgement, in batches, by
a background writer, and can always be rebuilt from the copies — a blob with a quorum of
verified copies was acknowledged, a failed write leaves fewer. So a read that misses the index
probes the backends and re-indexes what it finds (``_adopt``), and strays of failed writes
(fewer copies than the quorum) are never served; ``scrub`` reports them as orphans. A cache
(Redis) is filled after acknowledgement and never counts as a copy.

A backend that a write found unreachable (it timed out, or its client gave up) is skipped by
the writes that follow for a cool-down (1 s, doubling while it stays down, at most 30 s), as a
circuit breaker does: a hung S3 endpoint costs one batch a timeout, not every batch. The skipped
copies are recorded as failed, so ``scrub`` repairs them once the backend is back; the first
write after the cool-down tries it again. A backend is never skipped when the others cannot make
a quorum without it.

Reads try the cache, then durable backends from the cheapest, then the archive; every copy is
verified (see :func:`stave.store.base.verify_blob`). A missing or corrupt copy is skipped, the
next is tried, and the bad ones are repaired from the good bytes (read-repair).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Generic, TypeVar

from stave.db import Database
from stave.errors import BackendUnavailable, BlobNotFound, IntegrityError, StorageError
from stave.event import Event, admit
from stave.store.base import BlobInfo, BlobKey, BlobStore, Health, Namespace
from stave.store.index import CopyRecord, StoredBlob, StoreIndex
from stave.store.urls import open_store

__all__ = ["PutResult", "QuorumError", "ReplicatedStore", "ScrubReport", "StoreHealth"]

_log = logging.getLogger(__name__)


class QuorumError(BackendUnavailable):
    """Fewer than ``min_redundancy`` durable copies could be written; nothing was stored."""

    def __init__(self, key: BlobKey | None, confirmed: list[str], failures: dict[str, str], needed: int) -> None:
        self.key = key
        self.confirmed = confirmed
        self.failures = failures
        reasons = "; ".join(f"{backend}: {reason}" for backend, reason in failures.items()) or "no durable backends"
        what = str(key) if key else "write"
        super().__init__(
            f"{what}: only {len(confirmed)} of the {needed} durable copies needed were written ({reasons})",
            retry_after=5.0,
        )


@dataclass(frozen=True, slots=True)
class PutResult:
    key: BlobKey
    stored: list[str]
    failed: dict[str, str]
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class StoreHealth:
    ok: bool
    durable_up: int
    min_redundancy: int
    backends: list[Health]


@dataclass
class BackendCounts:
    ok: int = 0
    missing: int = 0
    corrupt: int = 0
    unavailable: int = 0
    repaired: int = 0
    orphaned: int = 0
    temporaries: int = 0  # files a crashed write left behind, removed (local directories)


@dataclass
class ScrubReport:
    checked: int = 0
    reindexed: int = 0
    unrecoverable: list[str] = field(default_factory=list)
    backends: dict[str, BackendCounts] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Nothing wrong was found anywhere."""
        return not self.unrecoverable and all(
            counts.missing == counts.corrupt == counts.unavailable == counts.orphaned == 0
            for counts in self.backends.values()
        )

    @property
    def healed(self) -> bool:
        """Every missing or corrupt copy found was repaired."""
        return not self.unrecoverable and all(
            counts.repaired == counts.missing + counts.corrupt for counts in self.backends.values()
        )


T = TypeVar("T")


class _BackgroundBatches(Generic[T]):
    """Work done behind an acknowledgement, in batches, on one thread of its own.

    ``submit`` queues items and returns at once; the thread takes everything queued and hands
    it to ``_process``, which returns False to have the batch tried again shortly. ``flush``
    waits until everything queued so far is processed.
    """

    def __init__(self, name: str) -> None:
        self._queue: list[T] = []
        self._busy = False
        self._closed = False
        self._condition = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _enqueue(self, items: Iterable[T]) -> None:  # called with the condition held
        self._queue.extend(items)
        self._condition.notify_all()

    def _process(self, batch: list[T]) -> bool:
        raise NotImplementedError

    def _done(self, batch: list[T]) -> None:  # called with the condition held, after success
        """Hook for bookkeeping once a batch is processed."""

    def flush(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._queue and not self._busy)

    def close(self, *, drain: bool = True) -> None:
        if drain:
            self.flush()
        with self._condition:
            self._closed = True
            self._queue.clear()
            self._condition.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                batch, self._queue = self._queue, []
                self._busy = True
            ok = False
            try:
                ok = self._process(batch)
            finally:
                with self._condition:
                    if ok:
                        self._done(batch)
                    else:
                        self._queue[:0] = batch
                    self._busy = False
                    self._condition.notify_all()
            if not ok:
                time.sleep(0.5)


_IndexEntry = tuple[BlobKey, int, BlobInfo, list[CopyRecord]]


class _IndexWriter(_BackgroundBatches[_IndexEntry]):
    """Writes index rows after acknowledgement.

    A put is acknowledged once its quorum of durable copies is written; the copies are the
    truth and the index an accelerator that can be rebuilt from them (``ReplicatedStore._adopt``),
    so its rows need not delay the caller. Until a row is written, ``pending`` answers for it,
    so a reader sees its own writes at once. A failed batch is retried; rows lost with the
    process are found again from the copies on the next read or scrub.
    """

    def __init__(self, index: StoreIndex) -> None:
        self._index = index
        self._pending: dict[BlobKey, StoredBlob] = {}
        super().__init__("stave-store-index")

    def submit(self, entries: Sequence[_IndexEntry]) -> None:
        if not entries:
            return
        with self._condition:
            for key, size, info, copies in entries:
                self._pending[key] = StoredBlob(key, size, info.created_at, {c.backend: c for c in copies})
            self._enqueue(entries)

    def pending(self, key: BlobKey) -> StoredBlob | None:
        with self._condition:
            return self._pending.get(key)

    def pending_among(self, keys: Iterable[BlobKey]) -> dict[BlobKey, StoredBlob]:
        with self._condition:
            return {key: self._pending[key] for key in keys if key in self._pending}

    def _process(self, batch: list[_IndexEntry]) -> bool:
        try:
            self._index.record_stored(batch)
        except Exception:  # the database is down: keep the rows, try again shortly
            _log.exception("writing %d store index rows failed; retrying", len(batch))
            return False
        return True

    def _done(self, batch: list[_IndexEntry]) -> None:
        for key, *_ in batch:
            self._pending.pop(key, None)


class _CacheFiller(_BackgroundBatches[tuple[bool, BlobKey, bytes]]):
    """Fills the cache off the acknowledgement path.

    The cache is never a copy, so no writer or reader waits for it: a hung or refusing cache
    costs this thread its timeouts, not every event of a group commit. New blobs go in one
    ``put_many`` (one pipeline for Redis), read-through copies by ``fill``; failures are
    dropped, not retried. Past ``max_pending`` queued blobs the oldest are dropped: a cache that
    cannot keep up only misses, and memory stays bounded.
    """

    def __init__(self, cache: BlobStore, *, max_pending: int = 10_000) -> None:
        self._cache = cache
        self._max_pending = max_pending
        self.dropped = 0
        super().__init__("stave-store-cache")

    def submit(self, items: Iterable[tuple[BlobKey, bytes]], *, read: bool = False) -> None:
        with self._condition:
            if self._closed:
                return
            self._enqueue((read, key, data) for key, data in items)
            if len(self._queue) > self._max_pending:
                excess = len(self._queue) - self._max_pending
                del self._queue[:excess]
                self.dropped += excess

    def _process(self, batch: list[tuple[bool, BlobKey, bytes]]) -> bool:
        writes = [(key, data, BlobInfo()) for read, key, data in batch if not read]
        if writes:
            with contextlib.suppress(Exception):
                self._cache.put_many(writes)
        for read, key, data in batch:
            if read:
                with contextlib.suppress(Exception):
                    self._cache.fill(key, data)
        return True


class _Breaker:
    """Which backends writes skip for now, and until when (see the module docstring)."""

    def __init__(self, first: float = 1.0, longest: float = 30.0) -> None:
        self.first = first
        self.longest = longest
        self._open: dict[str, tuple[float, float]] = {}  # backend → (skipped until, cool-down)
        self._lock = threading.Lock()

    def skipped(self, name: str) -> float | None:
        """Seconds left of ``name``'s cool-down, or None when writes should try it."""
        with self._lock:
            state = self._open.get(name)
        if state is None:
            return None
        left = state[0] - time.monotonic()
        return left if left > 0 else None

    def failed(self, name: str) -> None:
        with self._lock:
            previous = self._open.get(name)
            cooldown = min(self.longest, previous[1] * 2) if previous else self.first
            self._open[name] = (time.monotonic() + cooldown, cooldown)
        _log.warning("store backend %s unreachable: writes skip it for %g s", name, cooldown)

    def succeeded(self, name: str) -> None:
        with self._lock:
            if self._open.pop(name, None) is not None:
                _log.info("store backend %s reachable again", name)


def _info(event: Event) -> BlobInfo:
    return BlobInfo(event_type=event.type.name, author=event.author, created_at=event.created_at)


class _Skipped(BackendUnavailable):
    """A write not sent to a backend in its cool-down."""


class ReplicatedStore:
    def __init__(
        self,
        durable: Sequence[BlobStore],
        index: StoreIndex,
        *,
        cache: BlobStore | None = None,
        archive: BlobStore | None = None,
        min_redundancy: int = 2,
        timeout: float = 10.0,
        temp_dir: Path | None = None,
    ) -> None:
        names = [backend.name for backend in durable] + [b.name for b in (cache, archive) if b is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be distinct, got {names}")
        if any(not backend.durable for backend in durable):
            raise ValueError("a cache cannot be a durable backend: a copy with a TTL is not a copy")
        if not 1 <= min_redundancy <= len(durable):
            raise ValueError(
                f"min_redundancy must be between 1 and {len(durable)} (the durable backends), got {min_redundancy}"
            )
        self.durable = list(durable)
        self.index = index
        self.cache = cache
        self.archive = archive
        self.min_redundancy = min_redundancy
        self.timeout = timeout
        self.temp_dir = temp_dir
        self._executor = ThreadPoolExecutor(max_workers=max(8, 4 * len(names)), thread_name_prefix="stave-store")
        self._index_writer = _IndexWriter(index)
        self._cache_filler = _CacheFiller(cache) if cache is not None else None
        self._breaker = _Breaker()

    @classmethod
    def from_urls(
        cls,
        durable: Sequence[str],
        database: Database,
        *,
        cache: str = "",
        archive: str = "",
        min_redundancy: int = 2,
        timeout: float = 10.0,
        temp_dir: Path | None = None,
    ) -> ReplicatedStore:
        """Open every backend from its URL (see :mod:`stave.store.urls`)."""
        return cls(
            [open_store(url) for url in durable],
            StoreIndex(database),
            cache=open_store(cache) if cache else None,
            archive=open_store(archive) if archive else None,
            min_redundancy=min_redundancy,
            timeout=timeout,
            temp_dir=temp_dir,
        )

    # --- writes -----------------------------------------------------------------------------

    def put_event(self, event: Event) -> PutResult:
        """Store one admitted event at quorum or raise :class:`QuorumError`."""
        result = self.put_events([event])[0]
        if isinstance(result, QuorumError):
            raise result
        return result

    def put_events(self, events: Sequence[Event]) -> list[PutResult | QuorumError]:
        """Store many events with one write per backend and one index transaction (group commit)."""
        items = {BlobKey.event(event.id): (event.canonical_bytes(), _info(event)) for event in events}
        results = self._put_blobs(items)
        return [results[BlobKey.event(event.id)] for event in events]

    def _put_blobs(self, items: dict[BlobKey, tuple[bytes, BlobInfo]]) -> dict[BlobKey, PutResult | QuorumError]:
        # The writes start before the duplicate check returns: rewriting a stored blob is
        # harmless (create-only, same bytes), and the two overlap instead of adding up.
        batch = [(key, data, info) for key, (data, info) in items.items()]
        futures = self._submit_everywhere(lambda backend: backend.put_many(batch))
        known = self.index.stored(list(items))
        known.update(self._index_writer.pending_among(items))
        written = self._collect(futures, len(batch))
        results: dict[BlobKey, PutResult | QuorumError] = {
            key: PutResult(key, [c.backend for c in blob.copies.values() if c.state == "ok"], {}, duplicate=True)
            for key, blob in known.items()
        }
        new_positions = [position for position, (key, _, _) in enumerate(batch) if key not in known]
        if not new_positions:
            return results
        new = [batch[position] for position in new_positions]
        outcomes = {name: [values[position] for position in new_positions] for name, values in written.items()}
        entries = []
        for position, (key, data, info) in enumerate(new):
            confirmed: list[str] = []
            failures: dict[str, str] = {}
            copies: list[CopyRecord] = []
            for backend in self.durable:
                outcome = outcomes[backend.name][position]
                if isinstance(outcome, Exception):
                    failures[backend.name] = str(outcome)
                    copies.append(CopyRecord(backend.name, "failed", detail=str(outcome)[:2000]))
                else:
                    confirmed.append(backend.name)
                    copies.append(CopyRecord(backend.name, "ok", locator=outcome))
            if len(confirmed) >= self.min_redundancy:
                entries.append((key, len(data), info, copies))
                results[key] = PutResult(key, confirmed, failures)
            else:
                results[key] = QuorumError(key, confirmed, failures, self.min_redundancy)
        # Acknowledged: the quorum of durable copies is the truth. The index rows follow in the
        # background, batched (readers see them at once through the writer's pending map).
        self._index_writer.submit(entries)
        if self._cache_filler is not None:  # the cache fills behind the acknowledgement, never before it
            self._cache_filler.submit((key, data) for key, data, _ in new if isinstance(results[key], PutResult))
        return results

    def _write_everywhere(
        self, write: Callable[[BlobStore], list[str | StorageError | None]], count: int
    ) -> dict[str, list[str | StorageError | None]]:
        return self._collect(self._submit_everywhere(write), count)

    def _submit_everywhere(
        self, write: Callable[[BlobStore], list[str | StorageError | None]]
    ) -> dict[str, Future[list[str | StorageError | None]]]:
        futures: dict[str, Future[list[str | StorageError | None]]] = {}
        cooling = {backend.name: self._breaker.skipped(backend.name) for backend in self.durable}
        if len(self.durable) - sum(left is not None for left in cooling.values()) < self.min_redundancy:
            cooling = {}  # the others cannot make a quorum alone: skipping would only fail the write
        for backend in self.durable:
            left = cooling.get(backend.name)
            if left is None:
                futures[backend.name] = self._executor.submit(write, backend)
                continue
            skipped: Future[list[str | StorageError | None]] = Future()
            skipped.set_exception(
                _Skipped(f"{backend.name}: not tried: unreachable on a recent write (tried again in {left:.1f} s)")
            )
            futures[backend.name] = skipped
        return futures

    def _collect(
        self, futures: dict[str, Future[list[str | StorageError | None]]], count: int
    ) -> dict[str, list[str | StorageError | None]]:
        """Each backend's outcomes; one still running after ``timeout`` counts as failed."""
        wait(futures.values(), timeout=self.timeout)
        outcomes: dict[str, list[str | StorageError | None]] = {}
        for name, future in futures.items():
            if not future.done():
                outcomes[name] = [BackendUnavailable(f"{name}: timed out after {self.timeout:g} s")] * count
                self._breaker.failed(name)
                continue
            try:
                outcomes[name] = future.result()
            except _Skipped as exc:
                outcomes[name] = [exc] * count
                continue
            except Exception as exc:
                outcomes[name] = [StorageError(f"{name}: {type(exc).__name__}: {exc}")] * count
            if outcomes[name] and all(isinstance(outcome, BackendUnavailable) for outcome in outcomes[name]):
                self._breaker.failed(name)
            else:
                self._breaker.succeeded(name)
        return outcomes

    # --- reads ------------------------------------------------------------------------------

    def get_event(self, event_id: str) -> bytes:
        """The verified canonical bytes of a stored event."""
        return self.get(BlobKey.event(event_id))

    def get(self, key: BlobKey) -> bytes:
        if self.cache is not None:
            with contextlib.suppress(StorageError):
                return self.cache.get(key)
        blob = self._lookup(key)
        if blob is None:
            raise BlobNotFound(f"{key} is not stored")
        return self._read_stored(blob)

    def _lookup(self, key: BlobKey) -> StoredBlob | None:
        blob = self.index.get(key) or self._index_writer.pending(key)
        return blob if blob is not None else self._adopt(key)

    def flush(self) -> None:
        """Wait until every acknowledged blob's index rows, and the cache fills queued so far, are written."""
        self._index_writer.flush()
        if self._cache_filler is not None:
            self._cache_filler.flush()

    def _adopt(self, key: BlobKey) -> StoredBlob | None:
        """Find a blob the index does not know on the backends themselves, and index it.

        The copies are the truth and the index an accelerator, written without an fsync of its
        own: a power loss may lose its last rows. A blob with ``min_redundancy`` verified copies
        was acknowledged (a failed write leaves fewer), so it is indexed again and served;
        fewer copies are the strays of a failed write and stay invisible.
        """
        found: dict[str, bytes] = {}
        for backend in self.durable:
            with contextlib.suppress(StorageError):
                found[backend.name] = backend.get(key)
        if len(found) < self.min_redundancy:
            return None
        data = next(iter(found.values()))
        info = BlobInfo(content_type="application/octet-stream")
        if key.namespace is Namespace.EVENTS:
            info = _info(admit(data, expected_id=key.digest))
        copies = [CopyRecord(b.name, "ok" if b.name in found else "missing") for b in self.durable]
        self.index.record_stored([(key, len(data), info, copies)])
        return self.index.get(key)

    def get_events(self, event_ids: Sequence[str]) -> dict[str, bytes | StorageError]:
        """Verified bytes (or the error) per id: the cache in one pipeline, the rest in parallel."""
        keys = [BlobKey.event(event_id) for event_id in event_ids]
        found: dict[BlobKey, bytes | StorageError] = {}
        if self.cache is not None:
            for key, value in self.cache.get_many(keys).items():
                if isinstance(value, bytes):
                    found[key] = value
        missing = [key for key in keys if key not in found]
        stored = self.index.stored(missing)
        stored.update(self._index_writer.pending_among(missing))
        for key in missing:
            if key not in stored and (adopted := self._adopt(key)) is not None:
                stored[key] = adopted
        futures = {key: self._executor.submit(self._read_stored, stored[key]) for key in missing if key in stored}
        for key in missing:
            if key not in stored:
                found[key] = BlobNotFound(f"{key} is not stored")
                continue
            try:
                found[key] = futures[key].result()
            except StorageError as exc:
                found[key] = exc
        return {key.digest: found[key] for key in keys}

    def _read_order(self, blob: StoredBlob) -> list[tuple[BlobStore, str | None]]:
        candidates = list(self.durable) + ([self.archive] if self.archive is not None else [])

        # Known-good copies first, cheapest first; then the rest, which may hold it anyway.
        def rank(backend: BlobStore) -> tuple[int, int]:
            copy = blob.copies.get(backend.name)
            return (0 if copy is not None and copy.state == "ok" else 1, backend.cost)

        ordered = sorted(candidates, key=rank)
        return [
            (backend, blob.copies[backend.name].locator if backend.name in blob.copies else None)
            for backend in ordered
            if backend is not self.archive or backend.name in blob.copies
        ]

    def _read_stored(self, blob: StoredBlob) -> bytes:
        key = blob.key
        bad: list[tuple[BlobStore, str]] = []
        unavailable: list[str] = []
        errors: list[str] = []
        for backend, locator in self._read_order(blob):
            try:
                data = backend.get(key, locator)
            except BlobNotFound as exc:
                bad.append((backend, "missing"))
                errors.append(str(exc))
            except IntegrityError as exc:
                bad.append((backend, "corrupt"))
                errors.append(str(exc))
            except StorageError as exc:
                unavailable.append(backend.name)
                errors.append(str(exc))
            else:
                if bad:
                    self._executor.submit(self._repair, key, data, bad)
                if self._cache_filler is not None:
                    self._cache_filler.submit([(key, data)], read=True)
                return data
        reasons = "; ".join(errors)
        if any(state == "corrupt" for _, state in bad):
            raise IntegrityError(f"{key}: no good copy: {reasons}")
        if unavailable:
            raise BackendUnavailable(f"{key}: no copy could be read now: {reasons}", retry_after=5.0)
        raise BlobNotFound(f"{key}: no backend holds a copy: {reasons}")

    def _repair(self, key: BlobKey, data: bytes, bad: Iterable[tuple[BlobStore, str]]) -> list[str]:
        """Write good bytes over missing or corrupt copies; record the outcome. Returns repaired names."""
        repaired: list[str] = []
        records: list[CopyRecord] = []
        for backend, _state in bad:
            if backend is self.archive:
                continue  # archives are rewritten only by the archive job
            try:
                locator = backend.put(key, data, BlobInfo(), replace=True)
                backend.get(key, locator)  # verify the repair took
            except StorageError as exc:
                records.append(CopyRecord(backend.name, "failed", detail=f"repair failed: {exc}"[:2000]))
            else:
                records.append(CopyRecord(backend.name, "ok", locator=locator))
                repaired.append(backend.name)
        if records:
            self._quietly(self.index.record_copies, key, records)
        return repaired

    # --- media ------------------------------------------------------------------------------

    def put_media(self, stream: BinaryIO, *, max_bytes: int | None = None) -> tuple[str, PutResult]:
        """Spool a stream to a temporary file while hashing it (bounded memory), then store it."""
        limit = max_bytes or min(backend.media_max_bytes for backend in self.durable)
        digest = hashlib.sha256()
        size = 0
        with tempfile.NamedTemporaryFile(dir=self.temp_dir, prefix="stave-media-", delete=False) as spool:
            spool_path = Path(spool.name)
            try:
                while chunk := stream.read(1 << 20):
                    size += len(chunk)
                    if size > limit:
                        raise StorageError(f"media is larger than the limit of {limit} bytes")
                    digest.update(chunk)
                    spool.write(chunk)
                spool.flush()
            except BaseException:
                spool_path.unlink(missing_ok=True)
                raise
        try:
            key = BlobKey.media(digest.hexdigest())
            return key.digest, self._put_media_file(key, spool_path, size)
        finally:
            spool_path.unlink(missing_ok=True)

    def _put_media_file(self, key: BlobKey, path: Path, size: int) -> PutResult:
        known = self.index.get(key)
        if known is not None:
            return PutResult(key, [c.backend for c in known.copies.values() if c.state == "ok"], {}, duplicate=True)

        def write(backend: BlobStore) -> list[str | StorageError | None]:
            try:
                return [backend.put_path(key, path)]
            except StorageError as exc:
                return [exc]

        outcomes = self._write_everywhere(write, 1)
        copies, confirmed, failures = [], [], {}
        for backend in self.durable:
            outcome = outcomes[backend.name][0]
            if isinstance(outcome, Exception):
                failures[backend.name] = str(outcome)
                copies.append(CopyRecord(backend.name, "failed", detail=str(outcome)[:2000]))
            else:
                confirmed.append(backend.name)
                copies.append(CopyRecord(backend.name, "ok", locator=outcome))
        if len(confirmed) < self.min_redundancy:
            raise QuorumError(key, confirmed, failures, self.min_redundancy)
        self.index.record_stored([(key, size, BlobInfo(content_type="application/octet-stream"), copies)])
        return PutResult(key, confirmed, failures)

    def get_media_to(self, sha256: str, destination: Path) -> None:
        """Write a verified media blob to ``destination`` (streamed where the backend can)."""
        key = BlobKey.media(sha256)
        blob = self._lookup(key)
        if blob is None:
            raise BlobNotFound(f"{key} is not stored")
        errors = []
        for backend, locator in self._read_order(blob):
            try:
                backend.get_to_path(key, destination, locator)
                return
            except StorageError as exc:
                errors.append(str(exc))
        raise IntegrityError(f"{key}: no good copy: {'; '.join(errors)}")

    # --- operations -------------------------------------------------------------------------

    def health(self) -> StoreHealth:
        backends = [*self.durable, *(b for b in (self.cache, self.archive) if b is not None)]
        reports = list(self._executor.map(lambda backend: backend.health(), backends))
        up = sum(1 for report, backend in zip(reports, backends, strict=True) if report.ok and backend in self.durable)
        return StoreHealth(up >= self.min_redundancy, up, self.min_redundancy, reports)

    def scrub(
        self, namespace: Namespace = Namespace.EVENTS, *, progress: Callable[[int, int], None] | None = None
    ) -> ScrubReport:
        """Verify every copy of every stored blob on every durable backend and repair from good ones.

        Also lists each backend to find *orphans*: copies of blobs the index does not hold
        (left by writes that failed their quorum); they are reported, not served.
        """
        self.flush()
        report = ScrubReport(backends={backend.name: BackendCounts() for backend in self.durable})
        for backend in self.durable:
            remove_temporaries = getattr(backend, "remove_temporaries", None)
            if remove_temporaries is not None:
                with contextlib.suppress(OSError):  # a broken directory is reported by the checks below
                    report.backends[backend.name].temporaries = remove_temporaries()
        total = self.index.count(namespace)
        stored_digests: set[str] = set()
        lock = threading.Lock()

        def check(digest: str) -> None:
            key = BlobKey(namespace, digest)
            blob = self.index.get(key)
            if blob is None:
                return
            good: bytes | None = None
            bad: list[tuple[BlobStore, str]] = []
            states: dict[str, str] = {}
            for backend in self.durable:
                copy = blob.copies.get(backend.name)
                try:
                    data = backend.get(key, copy.locator if copy else None)
                except BlobNotFound:
                    states[backend.name] = "missing"
                    bad.append((backend, "missing"))
                except IntegrityError:
                    states[backend.name] = "corrupt"
                    bad.append((backend, "corrupt"))
                except StorageError:
                    states[backend.name] = "unavailable"
                else:
                    states[backend.name] = "ok"
                    good = good or data
            if good is None and self.archive is not None and self.archive.name in blob.copies:
                with contextlib.suppress(StorageError):
                    good = self.archive.get(key, blob.copies[self.archive.name].locator)
            repaired = self._repair(key, good, bad) if good is not None and bad else []
            with lock:
                report.checked += 1
                if good is None:
                    report.unrecoverable.append(digest)
                for name, state in states.items():
                    counts = report.backends[name]
                    setattr(counts, state, getattr(counts, state) + 1)
                    if name in repaired:
                        counts.repaired += 1
                if progress:
                    progress(report.checked, total)

        digests = list(self.index.iter_stored(namespace))
        stored_digests.update(digests)
        list(self._executor.map(check, digests))
        strays: dict[str, list[str]] = {}
        for backend in self.durable:
            with contextlib.suppress(StorageError):
                for digest in backend.list(namespace):
                    if digest not in stored_digests:
                        strays.setdefault(digest, []).append(backend.name)
        for digest, holders in strays.items():
            if self._adopt(BlobKey(namespace, digest)) is not None:
                report.reindexed += 1  # acknowledged, its index row lost: indexed again
                continue
            for name in holders:
                report.backends[name].orphaned += 1
        return report

    def archive_events(
        self, before: int, *, progress: Callable[[int, int], None] | None = None
    ) -> tuple[int, str | None]:
        """Pack stored events created before ``before`` (Unix seconds) into the archive.

        Events already archived are skipped. Returns (count archived, archive locator prefix).
        """
        if self.archive is None:
            raise StorageError("no archive is configured (set store.archive, e.g. car:///var/lib/stave/archive)")
        self.flush()
        digests = list(self.index.iter_stored(Namespace.EVENTS, before=before))
        keys = [BlobKey.event(d) for d in digests]
        stored = self.index.stored(keys)
        todo = [key for key in keys if self.archive.name not in stored[key].copies]
        items: list[tuple[BlobKey, bytes, BlobInfo]] = []
        for number, key in enumerate(todo, 1):
            items.append((key, self._read_stored(stored[key]), BlobInfo()))
            if progress:
                progress(number, len(todo))
        if not items:
            return 0, None
        locators = self.archive.put_many(items)
        first = None
        for (key, _, _), locator in zip(items, locators, strict=True):
            if isinstance(locator, StorageError):
                raise locator
            self.index.record_copies(key, [CopyRecord(self.archive.name, "ok", locator=locator)])
            first = first or locator
        return len(items), first

    def close(self) -> None:
        self._index_writer.close()
        if self._cache_filler is not None:
            self._cache_filler.close(drain=False)
        self._executor.shutdown(wait=False, cancel_futures=True)
        for backend in [*self.durable, *(b for b in (self.cache, self.archive) if b is not None)]:
            with contextlib.suppress(Exception):
                backend.close()

    @staticmethod
    def _quietly(fn: Callable[..., object], *args: object) -> None:
        """Best-effort side work (cache fill, index note) must never fail the caller."""
        with contextlib.suppress(Exception):
            fn(*args)
