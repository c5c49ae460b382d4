"""ReplicatedStore over real local directories: quorum, verification, repair, scrub."""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stave.db import open_database
from stave.errors import BlobNotFound, IntegrityError
from stave.store import BlobInfo, BlobKey, Namespace, QuorumError, ReplicatedStore, StoreIndex
from stave.store.local import LocalStore
from stave.store.memory import MemoryStore
from tests.store.events import event

_OPENED: list[ReplicatedStore] = []


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


def make(tmp_path: Path, count: int = 2, min_redundancy: int = 2, **kwargs: object) -> ReplicatedStore:
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    backends = [LocalStore(tmp_path / name, name=name) for name in "abc"[:count]]
    store = ReplicatedStore(backends, StoreIndex(database), min_redundancy=min_redundancy, **kwargs)  # type: ignore[arg-type]
    _OPENED.append(store)
    return store


def break_backend(store: LocalStore) -> None:
    """A real filesystem fault: the backend's directory becomes a plain file."""
    shutil.rmtree(store.root)
    store.root.write_bytes(b"not a directory")


def heal_backend(store: LocalStore) -> None:
    store.root.unlink()
    store.root.mkdir()


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_put_writes_every_durable_backend_and_acknowledges(tmp_path: Path) -> None:
    store = make(tmp_path)
    signed = event(1)
    result = store.put_event(signed)
    assert sorted(result.stored) == ["a", "b"]
    assert not result.failed
    for backend in store.durable:
        assert isinstance(backend, LocalStore)
        assert backend.path(BlobKey.event(signed.id)).read_bytes() == signed.canonical_bytes()
    assert store.get_event(signed.id) == signed.canonical_bytes()
    again = store.put_event(signed)
    assert again.duplicate


def test_below_quorum_fails_with_reasons_and_stores_nothing(tmp_path: Path) -> None:
    store = make(tmp_path)
    break_backend(store.durable[1])  # type: ignore[arg-type]
    signed = event(2)
    with pytest.raises(QuorumError) as info:
        store.put_event(signed)
    assert "only 1 of the 2" in str(info.value)
    assert "b:" in str(info.value)
    assert info.value.retry_after
    # The good backend holds a stray copy, but no read may mistake it for a stored event.
    assert store.durable[0].has(BlobKey.event(signed.id))
    with pytest.raises(BlobNotFound):
        store.get_event(signed.id)
    assert isinstance(store.get_events([signed.id])[signed.id], BlobNotFound)
    heal_backend(store.durable[1])  # type: ignore[arg-type]
    report = store.scrub()
    assert report.backends["a"].orphaned == 1
    assert store.put_event(signed).stored == ["a", "b"]  # the retry succeeds


def test_quorum_of_two_out_of_three_survives_one_failure_and_scrub_repairs(tmp_path: Path) -> None:
    store = make(tmp_path, count=3, min_redundancy=2)
    broken = store.durable[2]
    assert isinstance(broken, LocalStore)
    break_backend(broken)
    signed = [event(10 + i) for i in range(5)]
    results = store.put_events(signed)
    for result in results:
        assert not isinstance(result, QuorumError)
        assert set(result.failed) == {"c"}
    store.flush()  # index rows are written after the acknowledgement, in the background
    assert {key for key, backend, _ in store.index.pending_repairs()} == {BlobKey.event(e.id) for e in signed}
    heal_backend(broken)
    report = store.scrub()
    assert report.backends["c"].missing == 5
    assert report.backends["c"].repaired == 5
    assert report.healed
    assert store.scrub().clean
    assert store.index.pending_repairs() == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "other-event"])
def test_bad_copy_is_skipped_served_from_the_next_and_repaired(tmp_path: Path, damage: str) -> None:
    store = make(tmp_path)
    signed = event(20)
    store.put_event(signed)
    first = store.durable[0]
    assert isinstance(first, LocalStore)
    path = first.path(BlobKey.event(signed.id))
    data = path.read_bytes()
    if damage == "flip":
        path.write_bytes(data[:40] + bytes([data[40] ^ 0x20]) + data[41:])
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes(event(21).canonical_bytes())
    assert store.get_event(signed.id) == signed.canonical_bytes()
    wait_for(lambda: path.is_file() and path.read_bytes() == data)


def test_every_copy_corrupt_is_an_integrity_error(tmp_path: Path) -> None:
    store = make(tmp_path)
    signed = event(30)
    store.put_event(signed)
    for backend in store.durable:
        assert isinstance(backend, LocalStore)
        backend.path(BlobKey.event(signed.id)).write_bytes(b"{}")
    with pytest.raises(IntegrityError, match="no good copy"):
        store.get_event(signed.id)
    report = store.scrub()
    assert report.unrecoverable == [signed.id]
    assert report.backends["a"].corrupt == 1


def test_cache_is_filled_never_counted_and_verified(tmp_path: Path) -> None:
    cache = MemoryStore("cache", durable=False)
    store = make(tmp_path, cache=cache)
    signed = event(40)
    store.put_event(signed)
    store.flush()  # the cache fills behind the acknowledgement
    key = BlobKey.event(signed.id)
    assert cache.objects[key] == signed.canonical_bytes()
    cache.objects[key] = event(41).canonical_bytes()  # a poisoned cache entry is refused
    assert store.get_event(signed.id) == signed.canonical_bytes()
    with pytest.raises(ValueError, match="cache cannot be a durable backend"):
        ReplicatedStore([cache], store.index, min_redundancy=1)


def test_batch_reads(tmp_path: Path) -> None:
    cache = MemoryStore("cache", durable=False)
    store = make(tmp_path, cache=cache)
    signed = [event(50 + i) for i in range(6)]
    store.put_events(signed)
    store.flush()
    cache.objects.clear()
    store.put_event(signed[0])  # duplicate: no cache fill, it was already stored
    ids = [e.id for e in signed] + [event(99).id]
    found = store.get_events(ids)
    for one in signed:
        assert found[one.id] == one.canonical_bytes()
    assert isinstance(found[event(99).id], BlobNotFound)
    store.flush()
    assert len(cache.objects) == 6  # read-through filled the cache


def test_health_reflects_quorum(tmp_path: Path) -> None:
    store = make(tmp_path)
    health = store.health()
    assert health.ok
    assert health.durable_up == 2
    break_backend(store.durable[0])  # type: ignore[arg-type]
    health = store.health()
    assert not health.ok
    assert [report.ok for report in health.backends] == [False, True]


def test_media_streamed_round_trip(tmp_path: Path) -> None:
    store = make(tmp_path)
    payload = os.urandom(5 << 20)
    sha, result = store.put_media(io.BytesIO(payload))
    assert sorted(result.stored) == ["a", "b"]
    store.get_media_to(sha, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == payload
    first = store.durable[0]
    assert isinstance(first, LocalStore)
    first.path(BlobKey.media(sha)).write_bytes(b"tampered")
    store.get_media_to(sha, tmp_path / "again.bin")  # the bad copy is skipped
    assert (tmp_path / "again.bin").read_bytes() == payload


def test_backend_names_and_quorum_are_validated(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/db.sqlite")
    index = StoreIndex(database)
    with pytest.raises(ValueError, match="distinct"):
        ReplicatedStore([LocalStore(tmp_path / "x", name="a"), LocalStore(tmp_path / "y", name="a")], index)
    with pytest.raises(ValueError, match="min_redundancy"):
        ReplicatedStore([LocalStore(tmp_path / "x")], index, min_redundancy=2)


def test_index_survives_reopen(tmp_path: Path) -> None:
    store = make(tmp_path)
    signed = event(60)
    store.put_event(signed)
    store.close()  # flushes the index writer
    reopened = make(tmp_path)
    assert reopened.get_event(signed.id) == signed.canonical_bytes()
    assert reopened.index.count(Namespace.EVENTS) == 1
    assert BlobInfo().content_type == "application/json"


def test_a_lost_index_row_is_found_again_from_the_copies(tmp_path: Path) -> None:
    """The index is written without its own fsync: the copies are the truth."""
    store = make(tmp_path)
    signed = [event(70), event(71)]
    store.put_events(signed)
    store.flush()
    for one in signed:
        store.index.forget(BlobKey.event(one.id))  # as if a power loss took the last index rows
    assert store.get_event(signed[0].id) == signed[0].canonical_bytes()
    assert store.index.get(BlobKey.event(signed[0].id)) is not None  # indexed again
    report = store.scrub()
    assert report.reindexed == 1
    assert report.clean
    assert store.get_events([signed[1].id])[signed[1].id] == signed[1].canonical_bytes()


def test_a_stray_below_quorum_is_never_adopted(tmp_path: Path) -> None:
    store = make(tmp_path)
    signed = event(72)
    first = store.durable[0]
    first.put(BlobKey.event(signed.id), signed.canonical_bytes(), BlobInfo())  # one copy of two
    with pytest.raises(BlobNotFound):
        store.get_event(signed.id)
    assert store.scrub().backends["a"].orphaned == 1


def test_an_unreachable_backend_is_skipped_for_a_cool_down_then_tried_again(tmp_path: Path) -> None:
    store = make(tmp_path, count=3, min_redundancy=2)
    store._breaker.first = 2.0  # long enough that a slow machine cannot outlast it between two writes
    c = store.durable[2]
    assert isinstance(c, LocalStore)
    break_backend(c)  # writes to c now fail with an OSError: unreachable
    first = store.put_event(event(1))
    assert "not tried" not in first.failed["c"]  # tried, and failed
    second = store.put_event(event(2))
    assert sorted(second.stored) == ["a", "b"]
    assert "not tried: unreachable on a recent write" in second.failed["c"]
    heal_backend(c)
    third = store.put_event(event(3))
    assert "not tried" in third.failed["c"]  # still cooling down
    time.sleep(2.1)
    fourth = store.put_event(event(4))
    assert sorted(fourth.stored) == ["a", "b", "c"]  # tried again, and it answers
    assert sorted(store.put_event(event(5)).stored) == ["a", "b", "c"]
    store.flush()
    skipped = store.index.get(BlobKey.event(event(2).id))
    assert skipped is not None
    assert skipped.copies["c"].state == "failed"  # recorded, so scrub restores it
    report = store.scrub()
    assert report.backends["c"].repaired >= 3
    assert c.get(BlobKey.event(event(2).id)) == event(2).canonical_bytes()


def test_a_backend_the_quorum_needs_is_never_skipped(tmp_path: Path) -> None:
    store = make(tmp_path, count=2, min_redundancy=2)
    b = store.durable[1]
    assert isinstance(b, LocalStore)
    break_backend(b)
    with pytest.raises(QuorumError) as refused:
        store.put_event(event(1))
    assert "not tried" not in str(refused.value)
    heal_backend(b)
    # No cool-down here: skipping b would only fail the write, so it is tried at once.
    assert sorted(store.put_event(event(2)).stored) == ["a", "b"]
