"""IpfsStore against the contract on a real node (js-ipfs speaking the Kubo RPC API)."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from multiformats import CID

from stave.errors import BackendUnavailable, BlobNotFound, ConfigError, IntegrityError, StorageError
from stave.event import admit
from stave.store import BlobInfo, BlobKey, BlobStore, Namespace, open_store
from stave.store.car import CarArchive
from stave.store.ipfs import IpfsStore, unsigned_cid
from tests.servers.fixtures import fresh_ipfs_server, ipfs_server  # noqa: F401
from tests.servers.ipfs import IpfsServer
from tests.store.contract import BlobStoreContract
from tests.store.events import event

pytestmark = pytest.mark.ipfs

LOOKUP = 0.5  # seconds js-ipfs waits before an absent block counts as missing (Kubo answers at once)


@pytest.fixture
def store(ipfs_server: IpfsServer) -> Iterator[IpfsStore]:  # noqa: F811
    ipfs = IpfsStore(ipfs_server.api_url, lookup_timeout=LOOKUP)
    yield ipfs
    ipfs.close()


def _block_file(server: IpfsServer, cid: CID) -> Path:
    """Where the node keeps a block: flatfs, named by the base32 multihash, sharded next-to-last/2."""
    name = base64.b32encode(bytes(cid.digest)).decode().rstrip("=")
    return server.repo_dir / "blocks" / name[-3:-1] / f"{name}.data"


@pytest.fixture
def corrupt(ipfs_server: IpfsServer):  # noqa: F811
    # A node does not re-hash blocks on read, so bytes changed on its disk are what a rotten
    # disk would serve under the same CID: the driver must notice, and replace must repair.
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        assert locator is not None
        path = _block_file(ipfs_server, CID.decode(locator))
        assert path.is_file(), f"the node's block layout changed: {path} is missing"
        path.write_bytes(data)

    return overwrite


class TestIpfsStore(BlobStoreContract):
    seed = 5
    can_list = True  # by reading every pinned block: see the module docstring of stave.store.ipfs
    finds_without_locator = False  # a raw block is found by its CID only


def _put(store: IpfsStore, number: int) -> tuple[BlobKey, bytes, str]:
    signed = event(number)
    key = BlobKey.event(signed.id)
    locator = store.put(key, signed.canonical_bytes(), BlobInfo())
    assert locator is not None
    return key, signed.canonical_bytes(), locator


def test_events_are_cidv1_raw_sha256_blocks(store: IpfsStore, ipfs_server: IpfsServer) -> None:  # noqa: F811
    _key, data, locator = _put(store, 500_100)
    assert locator.startswith("bafkrei")  # base32, whatever the node answered in
    cid = CID.decode(locator)
    assert (cid.version, cid.codec.name, cid.hashfun.name) == (1, "raw", "sha2-256")
    assert cid.raw_digest == hashlib.sha256(data).digest()
    assert ipfs_server.api("block/get", arg=locator) == data
    pins = orjson.loads(ipfs_server.api("pin/ls", arg=locator))["Keys"]
    assert [CID.decode(pinned) for pinned in pins] == [cid]


def test_the_unsigned_block_is_addressed_by_the_event_id(store: IpfsStore, ipfs_server: IpfsServer) -> None:  # noqa: F811
    key, data, _ = _put(store, 500_200)
    store.flush()  # published off the write path
    cid = unsigned_cid(key.digest)
    assert cid.raw_digest.hex() == key.digest  # found on IPFS by the id alone
    assert ipfs_server.api("block/get", arg=cid.encode("base32")) == admit(data).unsigned_bytes
    assert orjson.loads(ipfs_server.api("pin/ls", arg=cid.encode("base32")))["Keys"]
    # ...but it has no signature, so it is never served as the event:
    with pytest.raises(BlobNotFound, match="no CID recorded"):
        store.get(key)
    assert not store.has(key)


def test_no_unsigned_block_when_asked_not_to(ipfs_server: IpfsServer) -> None:  # noqa: F811
    ipfs = open_store(f"ipfs+http://127.0.0.1:{ipfs_server.api_port}?unsigned=0&lookup_timeout={LOOKUP}")
    assert isinstance(ipfs, IpfsStore)
    key, _, locator = _put(ipfs, 500_300)
    assert ipfs.has(key, locator)
    assert not ipfs.has(key, unsigned_cid(key.digest).encode("base32"))
    ipfs.close()


def test_a_locator_naming_another_block_is_refused(store: IpfsStore) -> None:
    key_a, _, _ = _put(store, 500_400)
    _, _, locator_b = _put(store, 500_401)
    with pytest.raises(IntegrityError, match=f"{key_a}"):
        store.get(key_a, locator_b)
    with pytest.raises(IntegrityError):  # the id-addressed unsigned block is not the event either
        store.get(key_a, unsigned_cid(key_a.digest).encode("base32"))
    with pytest.raises(StorageError, match="is not a CID"):
        store.get(key_a, "not-a-cid")


def test_a_missing_block_answers_fast(store: IpfsStore) -> None:
    absent = CID.decode(bytes([1, 0x55, 0x12, 0x20]) + hashlib.sha256(os.urandom(16)).digest())
    key = BlobKey.event(event(500_500).id)
    started = time.perf_counter()
    with pytest.raises(BlobNotFound, match="is not on the node"):
        store.get(key, absent.encode("base32"))
    assert not store.has(key, absent.encode("base32"))
    assert time.perf_counter() - started < 2 * LOOKUP + 2


def test_delete_removes_both_blocks(store: IpfsStore) -> None:
    key, _, locator = _put(store, 500_600)
    store.flush()
    unsigned = unsigned_cid(key.digest).encode("base32")
    assert store.has(key, unsigned)
    store.delete(key, locator)
    assert not store.has(key, locator)
    assert not store.has(key, unsigned)


def test_list_maps_pins_back_to_addresses(store: IpfsStore) -> None:
    key, _, _ = _put(store, 500_700)
    media = os.urandom(2000)
    media_key = BlobKey.media(hashlib.sha256(media).hexdigest())
    store.put(media_key, media)
    events = set(store.list(Namespace.EVENTS))
    blobs = set(store.list(Namespace.MEDIA))
    assert key.digest in events
    assert media_key.digest not in events
    assert media_key.digest in blobs
    assert key.digest not in blobs  # neither its signed block nor its unsigned block is media
    assert hashlib.sha256(event(500_700).canonical_bytes()).hexdigest() not in blobs


def test_media_small_and_streamed(store: IpfsStore, tmp_path: Path) -> None:
    small = os.urandom(1000)
    small_key = BlobKey.media(hashlib.sha256(small).hexdigest())
    locator = store.put(small_key, small)
    assert locator is not None
    assert CID.decode(locator).raw_digest.hex() == small_key.digest
    assert store.get(small_key) == small  # one chunk: its CID follows from its hash, no locator needed

    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(600_000))
    big_key = BlobKey.media(hashlib.sha256(source.read_bytes()).hexdigest())
    big_locator = store.put_path(big_key, source)
    assert big_locator is not None
    assert CID.decode(big_locator).codec.name == "dag-pb"
    assert store.get(big_key, big_locator) == source.read_bytes()
    store.get_to_path(big_key, tmp_path / "out", big_locator)
    assert (tmp_path / "out").read_bytes() == source.read_bytes()

    with pytest.raises(IntegrityError, match="file hashes to"):
        store.put_path(BlobKey.media("0" * 64), source)
    with pytest.raises(IntegrityError, match="hashes to"):  # the tree of another file
        store.get_to_path(small_key, tmp_path / "wrong", big_locator)
    assert not (tmp_path / "wrong").exists()


def test_a_stopped_node_is_unavailable_then_recovers(fresh_ipfs_server: IpfsServer) -> None:  # noqa: F811
    ipfs = IpfsStore(fresh_ipfs_server.api_url, lookup_timeout=LOOKUP, timeout=5)
    key, data, locator = _put(ipfs, 500_800)
    fresh_ipfs_server.stop()
    other = event(500_801)
    with pytest.raises(BackendUnavailable):
        ipfs.put(BlobKey.event(other.id), other.canonical_bytes())
    with pytest.raises(BackendUnavailable):
        ipfs.get(key, locator)
    with pytest.raises(BackendUnavailable):
        ipfs.has(key, locator)
    report = ipfs.health()
    assert not report.ok
    assert "Connect" in report.detail
    fresh_ipfs_server.start()
    assert ipfs.health().ok
    assert ipfs.get(key, locator) == data  # pinned blocks survive the restart
    ipfs.put(BlobKey.event(other.id), other.canonical_bytes())
    ipfs.close()


def test_open_store_from_url(ipfs_server: IpfsServer) -> None:  # noqa: F811
    port = ipfs_server.api_port
    ipfs = open_store(f"ipfs+http://127.0.0.1:{port}?timeout=7&pin=1")
    assert isinstance(ipfs, IpfsStore)
    assert (ipfs.api_url, ipfs.timeout, ipfs.durable, ipfs.cost) == (f"http://127.0.0.1:{port}", 7.0, True, 30)
    assert ipfs.health().ok
    ipfs.close()
    unpinned = open_store(f"ipfs+http://127.0.0.1:{port}?pin=0")
    assert not unpinned.durable  # an unpinned block is garbage-collected: not a copy
    unpinned.close()
    secret = open_store("ipfs+https://user:hunter2@ipfs.example:443/prefix")
    assert isinstance(secret, IpfsStore)
    assert secret.api_url == "https://ipfs.example:443/prefix"
    assert "hunter2" not in secret.name
    secret.close()
    with pytest.raises(ConfigError, match="unknown parameters"):
        open_store(f"ipfs+http://127.0.0.1:{port}?pinned=1")


def test_a_car_archive_imports_into_ipfs(store: IpfsStore, ipfs_server: IpfsServer, tmp_path: Path) -> None:  # noqa: F811
    # The archive's CAR files are ordinary IPFS content: `dag import` them and every blob
    # is readable from the node by the CID in the archive's index.
    items = [(BlobKey.event(event(500_900 + i).id), event(500_900 + i).canonical_bytes(), BlobInfo()) for i in range(5)]
    archive = CarArchive(tmp_path)
    archive.put_many(items)
    car = next(tmp_path.glob("*.car"))
    answer = orjson.loads(ipfs_server.api("dag/import", car.read_bytes(), pin_roots="true"))
    sidecar = orjson.loads(car.with_name(car.name + ".idx.json").read_bytes())
    assert CID.decode(answer["Root"]["Cid"]["/"]) == CID.decode(sidecar["root"])
    for key, data, _ in items:
        assert store.get(key, sidecar["entries"][str(key)]["cid"]) == data


def test_replace_repairs_a_rotten_leaf_of_a_media_tree(
    store: IpfsStore,
    ipfs_server: IpfsServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = os.urandom(700_000)  # three 256 KiB leaves under a dag-pb root
    source = tmp_path / "media.bin"
    source.write_bytes(data)
    key = BlobKey.media(hashlib.sha256(data).hexdigest())
    locator = store.put_path(key, source)
    assert locator is not None
    refs = [orjson.loads(line)["Ref"] for line in ipfs_server.api("refs", arg=locator, recursive="true").splitlines()]
    leaf = _block_file(ipfs_server, CID.decode(refs[1]))
    rotten = bytearray(leaf.read_bytes())
    rotten[100] ^= 0x01
    leaf.write_bytes(bytes(rotten))
    with pytest.raises(IntegrityError, match="hashes to"):
        store.get(key, locator)
    repaired = store.put(key, data, replace=True)  # a plain put would skip the block it believes it has
    assert repaired is not None
    assert CID.decode(repaired) == CID.decode(locator)
    assert store.get(key, repaired) == data
