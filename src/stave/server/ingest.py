"""Group commit: many concurrent submissions share one store write and one log transaction.

Each request hands its admitted events to the :class:`Ingestor` and waits. A storing thread
takes everything queued (up to ``max_batch`` events) and stores it at quorum in one
``put_events`` (one durable sync per backend); a sequencing thread appends the stored events
to the log in one ``append`` (one durable commit) and answers every waiting request. The two
stages overlap, as Tessera's sequence and integrate steps do: while one batch is being
sequenced the next is being stored, and batches are sequenced in the order they were stored.
Under load, batches grow on their own (the stages are busy while requests queue up), which is
how strfry and Tessera amortise their fsyncs; with one client, a batch is one event and nothing
waits. An event is sequenced only after its copies are durable, so a crash between the stages
leaves stored but unsequenced copies, never a log entry without its event: the client got no
answer and submits again, which is idempotent.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from stave.errors import StorageError
from stave.event import Event
from stave.log.sequencer import Log
from stave.store import PutResult, QuorumError, ReplicatedStore

__all__ = ["Ingested", "Ingestor"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ingested:
    event_id: str
    seq: int
    new: bool
    stored: list[str]


_Submission = tuple[Sequence[Event], "Future[list[Ingested | StorageError]]"]


class Ingestor:
    def __init__(
        self,
        store: ReplicatedStore,
        log: Log,
        *,
        max_batch: int = 512,
        commit_delay: float = 0.0,
        commit_siblings: int = 5,
    ) -> None:
        self.store = store
        self.log = log
        self.max_batch = max_batch
        self.commit_delay = commit_delay
        self.commit_siblings = commit_siblings
        self._in_flight = 0  # submissions handed in and not yet answered
        self.batches = 0  # for metrics
        self.events = 0
        self.store_seconds = 0.0  # time spent in each stage, for metrics
        self.log_seconds = 0.0
        # One future per submission, not per event: a Future is a Condition and a lock, which a
        # batch of 100 events would otherwise pay 100 times.
        self._queue: list[_Submission] = []
        self._queued_events = 0
        self._condition = threading.Condition()
        self._closed = False
        # Stored batches waiting for the sequencer, in store order; at most one waits, so a slow
        # log holds back the store stage instead of piling up memory.
        self._stored: queue.Queue[tuple[list[_Submission], dict[str, PutResult | QuorumError]] | None] = queue.Queue(
            maxsize=1
        )
        self._store_thread = threading.Thread(target=self._store_stage, name="stave-ingest-store", daemon=True)
        self._sequence_thread = threading.Thread(target=self._sequence_stage, name="stave-ingest-log", daemon=True)
        self._store_thread.start()
        self._sequence_thread.start()

    def submit(self, events: Sequence[Event]) -> Future[list[Ingested | StorageError]]:
        """Queue admitted events; the future resolves to each one's position or StorageError, in order."""
        future: Future[list[Ingested | StorageError]] = Future()
        # Running from the start: a request cancelled while it waits (its client went away)
        # cannot cancel the future, so answering the rest of its batch never fails on it.
        future.set_running_or_notify_cancel()
        with self._condition:
            if self._closed:
                raise StorageError("the server is shutting down")
            self._queue.append((events, future))
            self._queued_events += len(events)
            self._in_flight += 1
            self._condition.notify()
        future.add_done_callback(self._answered)
        return future

    def _answered(self, _: Future[list[Ingested | StorageError]]) -> None:
        with self._condition:
            self._in_flight -= 1

    def pending(self) -> int:
        with self._condition:
            return self._queued_events

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._store_thread.join(timeout=30)
        self._sequence_thread.join(timeout=30)

    def _take(self) -> tuple[list[_Submission], int] | None:
        """Whole submissions, up to max_batch events (a larger submission goes alone); None when closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._queue or self._closed)
            if not self._queue:
                return None
            if self.commit_delay and self._in_flight >= self.commit_siblings:
                # Many submissions are waiting on the stages already (PostgreSQL's commit_delay
                # with commit_siblings): wait a moment for more to join this batch, so the
                # batch's fixed costs (two commits, an fsync each) are shared by more events.
                # One client alone never waits.
                self._condition.wait_for(
                    lambda: self._queued_events >= self.max_batch or self._closed, timeout=self.commit_delay
                )
            taken, count = 0, 0
            while taken < len(self._queue) and (taken == 0 or count + len(self._queue[taken][0]) <= self.max_batch):
                count += len(self._queue[taken][0])
                taken += 1
            batch, self._queue = self._queue[:taken], self._queue[taken:]
            self._queued_events -= count
            return batch, count

    def _store_stage(self) -> None:
        try:
            while (taken := self._take()) is not None:
                batch, count = taken
                started = time.perf_counter()
                try:
                    fresh = list({event.id: event for events, _ in batch for event in events}.values())
                    stored = dict(zip([e.id for e in fresh], self.store.put_events(fresh), strict=True))
                except Exception as exc:  # a bug or an outage: fail this batch, keep serving
                    _fail(batch, exc, count)
                    continue
                finally:
                    self.store_seconds += time.perf_counter() - started
                self._stored.put((batch, stored))
        finally:
            self._stored.put(None)  # the sequencer finishes what was stored, then stops

    def _sequence_stage(self) -> None:
        while (item := self._stored.get()) is not None:
            batch, stored = item
            try:
                self._sequence(batch, stored)
            except Exception as exc:  # a database outage: fail this batch, keep serving
                _fail(batch, exc, sum(len(events) for events, _ in batch))

    def _sequence(self, batch: list[_Submission], stored: dict[str, PutResult | QuorumError]) -> None:
        started = time.perf_counter()
        # No separate "already in the log?" query: storing is idempotent and the log's append
        # answers a known event with its original position, so one round trip fewer per batch.
        ready: dict[str, Event] = {}
        for events, _ in batch:
            for event in events:
                if not isinstance(stored[event.id], QuorumError):
                    ready.setdefault(event.id, event)
        sequenced = {item.event_id: item for item in self.log.append(list(ready.values()))}
        answered: set[str] = set()
        # Counted before anyone is answered, so a caller that saw its answer sees the counts too.
        self.batches += 1
        self.events += sum(len(events) for events, _ in batch)
        for events, future in batch:
            results: list[Ingested | StorageError] = []
            for event in events:
                result = stored[event.id]
                if isinstance(result, QuorumError):
                    results.append(result)
                    continue
                item = sequenced[event.id]
                # Two submissions of one new event in one batch: the first is new, the others repeat it.
                first = item.new and event.id not in answered
                results.append(Ingested(event.id, item.seq, first, result.stored if first else []))
                answered.add(event.id)
            future.set_result(results)
        elapsed = time.perf_counter() - started
        self.log_seconds += elapsed
        _log.debug("sequenced %d submissions in %.1f ms", len(batch), elapsed * 1e3)


def _fail(batch: list[_Submission], exc: Exception, count: int) -> None:
    _log.error("ingest batch of %d events failed: %s", count, exc, exc_info=exc)
    error = exc if isinstance(exc, StorageError) else StorageError(f"ingest failed: {exc}")
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
