"""Group commit: many concurrent submissions share one store write and one log transaction.

Each request hands its admitted events to the :class:`Ingestor` and waits. A single worker
thread takes everything queued (up to ``max_batch`` events), stores it at quorum in one
``put_events`` (one fsync per directory per backend), sequences the stored events in one
``append`` (one durable commit), and answers every waiting request. Under load, batches grow
on their own (the worker is busy while requests queue up), which is how strfry and Tessera
amortise their fsyncs; with one client, a batch is one event and nothing waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from stave.errors import StorageError
from stave.event import Event
from stave.log.sequencer import Log
from stave.store import QuorumError, ReplicatedStore

__all__ = ["Ingested", "Ingestor"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ingested:
    event_id: str
    seq: int
    new: bool
    stored: list[str]


class Ingestor:
    def __init__(self, store: ReplicatedStore, log: Log, *, max_batch: int = 512) -> None:
        self.store = store
        self.log = log
        self.max_batch = max_batch
        self.batches = 0  # for metrics
        self.events = 0
        self._queue: list[tuple[Event, Future[Ingested]]] = []
        self._condition = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="stave-ingest", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> list[Future[Ingested]]:
        """Queue admitted events; each future resolves to its position or a StorageError."""
        futures: list[Future[Ingested]] = [Future() for _ in events]
        with self._condition:
            if self._closed:
                raise StorageError("the server is shutting down")
            self._queue.extend(zip(events, futures, strict=True))
            self._condition.notify()
        return futures

    def pending(self) -> int:
        with self._condition:
            return len(self._queue)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                self._commit(batch)
            except Exception as exc:  # a bug or a database outage: fail this batch, keep serving
                _log.exception("ingest batch of %d failed", len(batch))
                error = exc if isinstance(exc, StorageError) else StorageError(f"ingest failed: {exc}")
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    def _commit(self, batch: list[tuple[Event, Future[Ingested]]]) -> None:
        started = time.perf_counter()
        unique: dict[str, Event] = {}
        for event, _ in batch:
            unique.setdefault(event.id, event)
        # No separate "already in the log?" query: storing is idempotent and the log's append
        # answers a known event with its original position, so one round trip fewer per batch.
        fresh = list(unique.values())
        stored = dict(zip([e.id for e in fresh], self.store.put_events(fresh), strict=True))
        sequenced = {
            item.event_id: item
            for item in self.log.append([e for e in fresh if not isinstance(stored[e.id], QuorumError)])
        }
        answered: set[str] = set()
        for event, future in batch:
            result = stored[event.id]
            if isinstance(result, QuorumError):
                future.set_exception(result)
                continue
            item = sequenced[event.id]
            # Two submissions of one new event in one batch: the first is new, the others repeat it.
            stored_on = result.stored if item.new else []
            future.set_result(Ingested(event.id, item.seq, item.new and event.id not in answered, stored_on))
            answered.add(event.id)
        self.batches += 1
        self.events += len(batch)
        _log.debug("committed %d events in %.1f ms", len(batch), (time.perf_counter() - started) * 1e3)
