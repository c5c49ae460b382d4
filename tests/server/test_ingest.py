"""The group-commit ingestor over a real replicated store (two local directories) and a SQLite log."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stave.db import open_database
from stave.errors import StorageError
from stave.log.note import Signer
from stave.log.sequencer import Log
from stave.server.ingest import Ingested, Ingestor
from stave.store import QuorumError, ReplicatedStore
from tests.store.events import event

SIGNER = Signer(name="test.stave/ingest", private_key=hashlib.sha256(b"ingest test key").digest())


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Ingestor, ReplicatedStore, Log]]:
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    store = ReplicatedStore.from_urls([f"file://{tmp_path}/a", f"file://{tmp_path}/b"], database, min_redundancy=2)
    log = Log(database, SIGNER)
    ingestor = Ingestor(store, log, max_batch=64)
    yield ingestor, store, log
    ingestor.close()
    store.close()
    database.close()


def test_concurrent_submissions_share_commits_and_get_gap_free_positions(
    parts: tuple[Ingestor, ReplicatedStore, Log],
) -> None:
    ingestor, store, log = parts
    results: dict[int, list[Ingested | StorageError]] = {}

    def submit(worker: int) -> None:
        results[worker] = ingestor.submit([event(worker * 100 + i) for i in range(5)]).result(timeout=60)

    threads = [threading.Thread(target=submit, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    items = [item for worker in sorted(results) for item in results[worker]]
    assert all(isinstance(item, Ingested) and item.new and len(item.stored) == 2 for item in items)
    seqs = sorted(item.seq for item in items if isinstance(item, Ingested))
    assert seqs == list(range(80))  # every event once, no gaps
    assert ingestor.events == 80
    assert ingestor.batches < 16  # submissions queued while a commit ran were committed together
    for worker, answers in results.items():  # answers come back in submission order
        assert [a.event_id for a in answers if isinstance(a, Ingested)] == [
            event(worker * 100 + i).id for i in range(5)
        ]
    assert log.size() == 80
    assert store.get_event(event(0).id) == event(0).canonical_bytes()


def test_a_repeat_in_one_submission_and_across_submissions_keeps_its_first_position(
    parts: tuple[Ingestor, ReplicatedStore, Log],
) -> None:
    ingestor, _, _ = parts
    one, two = event(1), event(2)
    first = ingestor.submit([one, two, one]).result(timeout=30)
    assert [(a.seq, a.new) for a in first if isinstance(a, Ingested)] == [(0, True), (1, True), (0, False)]
    assert isinstance(first[2], Ingested)
    assert first[2].stored == []  # the repeat stored nothing new
    [again] = ingestor.submit([two]).result(timeout=30)
    assert isinstance(again, Ingested)
    assert (again.seq, again.new, again.stored) == (1, False, [])


def test_events_below_quorum_fail_alone_and_are_not_sequenced(
    parts: tuple[Ingestor, ReplicatedStore, Log], tmp_path: Path
) -> None:
    ingestor, _, log = parts
    # Backend b can no longer be written: a file where its shard directories must go.
    assert not (tmp_path / "b" / "events").exists()
    (tmp_path / "b" / "events").write_bytes(b"not a directory")
    answers = ingestor.submit([event(10), event(11)]).result(timeout=30)
    assert all(isinstance(a, QuorumError) for a in answers)
    assert log.size() == 0
    os.remove(tmp_path / "b" / "events")
    [ok] = ingestor.submit([event(12)]).result(timeout=30)
    assert isinstance(ok, Ingested)
    assert ok.seq == 0  # the failed events took no position


def test_a_closed_ingestor_refuses_new_work(parts: tuple[Ingestor, ReplicatedStore, Log]) -> None:
    ingestor, _, _ = parts
    ingestor.close()
    with pytest.raises(StorageError, match="shutting down"):
        ingestor.submit([event(1)])


@pytest.fixture
def delayed(tmp_path: Path) -> Iterator[Ingestor]:
    """An ingestor that waits up to 0.5 s for company once 4 submissions are waiting."""
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    store = ReplicatedStore.from_urls([f"sqlite://{tmp_path}/a", f"sqlite://{tmp_path}/b"], database, min_redundancy=2)
    ingestor = Ingestor(store, Log(database, SIGNER), max_batch=64, commit_delay=0.5, commit_siblings=4)
    yield ingestor
    ingestor.close()
    store.close()
    database.close()


def test_one_client_alone_never_waits_for_company(delayed: Ingestor) -> None:
    for number in range(3):
        started = time.perf_counter()
        [answer] = delayed.submit([event(number)]).result(timeout=30)
        assert isinstance(answer, Ingested)
        assert time.perf_counter() - started < 0.4  # below commit_siblings: no commit_delay
    assert delayed.batches == 3


def test_under_load_submissions_wait_to_share_a_batch(delayed: Ingestor) -> None:
    # Four submissions at once put commit_siblings in flight; four more follow 20 ms apart, far
    # slower than a commit, yet the store stage waits for them and commits them together (with
    # no delay, each of the four would be a batch of its own).
    futures = [delayed.submit([event(100 + number)]) for number in range(4)]
    for number in range(4, 8):
        time.sleep(0.02)
        futures.append(delayed.submit([event(100 + number)]))
    answers = [future.result(timeout=30)[0] for future in futures]
    assert all(isinstance(answer, Ingested) and answer.new for answer in answers)
    assert sorted(answer.seq for answer in answers if isinstance(answer, Ingested)) == list(range(8))
    assert delayed.batches <= 3


def test_a_full_batch_does_not_wait_out_the_delay(delayed: Ingestor) -> None:
    started = time.perf_counter()
    futures = [delayed.submit([event(200 + 10 * n + i) for i in range(10)]) for n in range(8)]  # 80 > max_batch
    for future in futures:
        future.result(timeout=30)
    assert delayed.events == 80
    assert time.perf_counter() - started < 0.5 + 0.4  # the first batch left full, at once; at most one wait
