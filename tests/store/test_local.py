"""LocalStore against the contract, plus its crash-safety details."""

from __future__ import annotations

from pathlib import Path

import pytest

from stave.store import BlobInfo, BlobKey, BlobStore, open_store
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
    (store.path(key).parent / ".tmp-crashed").write_bytes(signed.canonical_bytes()[:10])
    assert not store.has(key)
    assert list(store.list(key.namespace)) == []
    assert store.remove_temporaries() == 1


def test_open_store_from_url(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}/a")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path / "a"
    assert store.name == f"file:{tmp_path}/a"
    with pytest.raises(Exception, match="expected file:///absolute/path"):
        open_store("file://relative/path")
    with pytest.raises(Exception, match="unknown scheme 'ftp'"):
        open_store("ftp://x")
