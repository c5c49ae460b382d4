"""The group-commit ingestor over a real replicated store (two local directories) and a SQLite log."""

from __future__ import annotations

import hashlib
import os
import threading
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
