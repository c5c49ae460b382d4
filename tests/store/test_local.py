"""LocalStore against the contract, plus its crash-safety details."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stave.db import open_database
from stave.errors import ConfigError, StorageError
from stave.store import BlobInfo, BlobKey, BlobStore, ReplicatedStore, StoreIndex, open_store
from stave.store import local as local_module
from stave.store.local import LocalStore
from stave.store.memory import MemoryStore
from tests.store.contract import BlobStoreContract
from tests.store.events import event


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def corrupt():
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        assert isinstance(store, LocalStore)
        store.path(key).write_bytes(data)

    return overwrite


class TestLocalStore(BlobStoreContract):
    seed = 1


class TestMemoryStore(BlobStoreContract):
    seed = 2

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("memory-test")

    @pytest.fixture
    def corrupt(self):
        def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
            assert isinstance(store, MemoryStore)
            store.objects[key] = data

        return overwrite


def test_layout_is_sharded(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    signed = event(1)
    store.put(BlobKey.event(signed.id), signed.canonical_bytes(), BlobInfo())
    assert (
        tmp_path / "events" / signed.id[:2] / signed.id[2:4] / f"{signed.id}.json"
    ).read_bytes() == signed.canonical_bytes()


def test_put_never_replaces_without_asking(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    signed = event(2)
    key = BlobKey.event(signed.id)
    store.put(key, signed.canonical_bytes(), BlobInfo())
    store.path(key).write_bytes(b"garbage")
    store.put(key, signed.canonical_bytes(), BlobInfo())  # create-only: the garbage stays for scrub to see
    assert store.path(key).read_bytes() == b"garbage"
    store.put(key, signed.canonical_bytes(), BlobInfo(), replace=True)
    assert store.get(key) == signed.canonical_bytes()


def test_leftover_temporaries_are_invisible_and_removable(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    signed = event(3)
    key = BlobKey.event(signed.id)
    store.path(key).parent.mkdir(parents=True)
    crashed = store.path(key).parent / ".tmp-crashed"
    crashed.write_bytes(signed.canonical_bytes()[:10])
    assert not store.has(key)
    assert list(store.list(key.namespace)) == []
    assert store.remove_temporaries() == 0  # young: it could be a write in progress
    assert crashed.exists()
    old = time.time() - 7200
    os.utime(crashed, (old, old))
    assert store.remove_temporaries() == 1
    assert not crashed.exists()


def test_scrub_removes_what_crashed_writes_left(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path}/stave.db")
    backends = [LocalStore(tmp_path / name, name=name) for name in "ab"]
    replicated = ReplicatedStore(backends, StoreIndex(database), min_redundancy=2)
    try:
        replicated.put_event(event(4))
        leftover = tmp_path / "b" / "events" / ".tmp-crashed"
        leftover.write_bytes(b"half a write")
        old = time.time() - 7200
        os.utime(leftover, (old, old))
        report = replicated.scrub()
        assert report.clean
        assert report.backends["b"].temporaries == 1
        assert report.backends["a"].temporaries == 0
        assert not leftover.exists()
    finally:
        replicated.close()
        database.close()


def test_open_store_from_url(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/a")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "a"
    assert store.name == f"file:{tmp_path}/a"
    with pytest.raises(Exception, match="expected file:///absolute/path"):
        open_store("file://relative/path")
    with pytest.raises(Exception, match="unknown scheme 'ftp'"):
        open_store("ftp://x")


class TestLocalStorePerFileFsync(BlobStoreContract):
    """The portable mode (an fsync per file and per directory) keeps the same contract."""

    seed = 3

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "store", sync="fsync")


def test_sync_mode_from_url_and_default(tmp_path: Path) -> None:
    assert LocalStore.from_url(f"file://{tmp_path}/a?sync=fsync").sync == "fsync"
    assert LocalStore.from_url(f"file://{tmp_path}/b?fsync=0").sync == "none"
    assert LocalStore(tmp_path / "c").sync == ("syncfs" if local_module._SYNCFS is not None else "fsync")
    with pytest.raises(ConfigError, match="sync='sometimes'"):
        LocalStore.from_url(f"file://{tmp_path}/d?sync=sometimes")


@pytest.mark.skipif(local_module._SYNCFS is None, reason="syncfs(2) is Linux-only")
def test_a_batch_costs_two_syncfs_and_data_is_durable_before_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(1) after writing the temporaries, before any link; (2) after the links: nothing per file."""
    real = local_module._SYNCFS
    assert real is not None
    store = LocalStore(tmp_path, sync="syncfs")
    events = [event(100 + i) for i in range(20)]
    seen: list[int] = []

    def counting(fd: int) -> int:
        seen.append(sum(1 for e in events if store.path(BlobKey.event(e.id)).exists()))
        return real(fd)

    fsyncs: list[int] = []
    monkeypatch.setattr(local_module, "_SYNCFS", counting)
    monkeypatch.setattr(local_module.os, "fsync", lambda fd: fsyncs.append(fd))
    results = store.put_many([(BlobKey.event(e.id), e.canonical_bytes(), BlobInfo()) for e in events])
    assert results == [None] * len(events)
    assert seen == [0, len(events)]  # no real name existed at the first sync, all at the second
    assert fsyncs == []
    assert all(store.get(BlobKey.event(e.id)) == e.canonical_bytes() for e in events)


@pytest.mark.skipif(local_module._SYNCFS is None, reason="syncfs(2) is Linux-only")
def test_a_failed_syncfs_fails_the_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path, sync="syncfs")
    monkeypatch.setattr(local_module, "_SYNCFS", lambda fd: -1)
    signed = event(7)
    [result] = store.put_many([(BlobKey.event(signed.id), signed.canonical_bytes(), BlobInfo())])
    assert isinstance(result, StorageError)
    assert "syncfs" in str(result)
    assert not store.path(BlobKey.event(signed.id)).exists()  # never linked: the data was not durable
