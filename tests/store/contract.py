"""The contract every BlobStore driver must keep, as a test class to subclass.

A driver's test module subclasses :class:`BlobStoreContract` and provides a ``store`` fixture
(a fresh, empty store per test, or one with a unique namespace of digests) and, where the
driver can hold corrupt bytes, a ``corrupt`` fixture: ``corrupt(store, key, locator, data)``
overwrites a stored copy with ``data`` behind the driver's back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from stave.errors import BlobNotFound, IntegrityError, StorageError
from stave.store import BlobInfo, BlobKey, BlobStore, Namespace
from tests.store.events import event

Corrupt = Callable[[BlobStore, BlobKey, "str | None", bytes], None]


def _put_event(store: BlobStore, number: int) -> tuple[BlobKey, bytes, str | None]:
    signed = event(number)
    key = BlobKey.event(signed.id)
    data = signed.canonical_bytes()
    return (
        key,
        data,
        store.put(key, data, BlobInfo(event_type="VOTE", author=signed.author, created_at=signed.created_at)),
    )


class BlobStoreContract:
    """Tests every driver passes. ``seed`` keeps event numbers apart between drivers sharing a server."""

    seed = 0
    can_list = True
    can_delete = True
    #: whether a copy put with a locator can be found without it (IPFS cannot: a CID is needed)
    finds_without_locator = True

    def n(self, number: int) -> int:
        return self.seed * 100_000 + number

    def test_put_get_round_trip(self, store: BlobStore) -> None:
        key, data, locator = _put_event(store, self.n(1))
        assert store.get(key, locator) == data
        assert store.has(key, locator)

    def test_put_is_idempotent(self, store: BlobStore) -> None:
        key, data, locator = _put_event(store, self.n(2))
        again = store.put(key, data, BlobInfo())
        assert store.get(key, again or locator) == data

    def test_missing_is_blob_not_found(self, store: BlobStore) -> None:
        key = BlobKey.event(event(self.n(3)).id)
        assert not store.has(key)
        with pytest.raises(BlobNotFound):
            store.get(key)

    def test_wrong_bytes_under_a_key_are_refused_on_read(self, store: BlobStore) -> None:
        # Bytes of event B stored under the address of event A must never be served as A.
        key_a = BlobKey.event(event(self.n(4)).id)
        other = event(self.n(5)).canonical_bytes()
        locator = store.put(key_a, other, BlobInfo())
        with pytest.raises(IntegrityError):
            store.get(key_a, locator)

    def test_media_round_trip_and_verification(self, store: BlobStore, tmp_path: Path) -> None:
        data = os.urandom(3000) + str(self.n(6)).encode()
        key = BlobKey.media(hashlib.sha256(data).hexdigest())
        locator = store.put(key, data, BlobInfo(content_type="image/png"))
        assert store.get(key, locator) == data
        store.get_to_path(key, tmp_path / "out", locator)
        assert (tmp_path / "out").read_bytes() == data
        source = tmp_path / "media.bin"
        big = os.urandom(3 << 20) + str(self.n(7)).encode()
        source.write_bytes(big)
        big_key = BlobKey.media(hashlib.sha256(big).hexdigest())
        big_locator = store.put_path(big_key, source)
        store.get_to_path(big_key, tmp_path / "big", big_locator)
        assert hashlib.sha256((tmp_path / "big").read_bytes()).hexdigest() == big_key.digest

    def test_size_limit(self, store: BlobStore) -> None:
        key = BlobKey.event(event(self.n(8)).id)
        with pytest.raises(StorageError, match="over the limit"):
            store.put(key, b"x" * (store.max_bytes + 1), BlobInfo())

    def test_get_many(self, store: BlobStore) -> None:
        stored = [_put_event(store, self.n(10 + i)) for i in range(5)]
        missing = BlobKey.event(event(self.n(20)).id)
        keys = [key for key, _, _ in stored] + [missing]
        result = store.get_many(keys)
        for key, data, _ in stored:
            if self.finds_without_locator:
                assert result[key] == data
            else:
                assert isinstance(result[key], BlobNotFound)
        assert isinstance(result[missing], BlobNotFound)

    def test_list_and_delete(self, store: BlobStore) -> None:
        key, _, locator = _put_event(store, self.n(30))
        if self.can_list:
            assert key.digest in set(store.list(Namespace.EVENTS))
        if self.can_delete:
            store.delete(key, locator)
            assert not store.has(key, locator)
            store.delete(key, locator)  # deleting what is gone is fine

    def test_health(self, store: BlobStore) -> None:
        report = store.health()
        assert report.ok, report.detail
        assert report.latency_ms >= 0

    def test_corrupt_copy_is_refused_and_replace_repairs(self, store: BlobStore, corrupt: Corrupt) -> None:
        key, data, locator = _put_event(store, self.n(40))
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        corrupt(store, key, locator, bytes(flipped))
        with pytest.raises(IntegrityError):
            store.get(key, locator)
        corrupt(store, key, locator, data[: len(data) // 2])  # truncated
        with pytest.raises(IntegrityError):
            store.get(key, locator)
        new_locator = store.put(key, data, BlobInfo(), replace=True)
        assert store.get(key, new_locator or locator) == data

    def test_addresses_cannot_escape(self) -> None:
        for bad in ["../" * 10 + "etc/passwd", "A" * 64, "0" * 63, "0" * 65, "g" * 64]:
            with pytest.raises(ValueError, match="64 lowercase hex"):
                BlobKey.event(bad)
