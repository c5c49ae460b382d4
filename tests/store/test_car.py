"""CarArchive against the contract, plus the CARv1 format, read_car's checks and interop."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import dag_cbor
import orjson
import pytest
from multiformats import CID, multihash

from stave.errors import BlobNotFound, StorageError
from stave.store import BlobInfo, BlobKey, BlobStore, Namespace, open_store
from stave.store.car import CarArchive, CarFormatError, cid_string, raw_cid, read_car
from tests.store.contract import BlobStoreContract
from tests.store.events import event

VECTORS = Path(__file__).parent.parent / "vectors" / "car"


@pytest.fixture
def store(tmp_path: Path) -> CarArchive:
    return CarArchive(tmp_path / "archive")


@pytest.fixture
def corrupt():
    def overwrite(store: BlobStore, key: BlobKey, locator: str | None, data: bytes) -> None:
        """Write ``data`` over the block's bytes in its CAR file; a shorter ``data`` truncates the file."""
        assert isinstance(store, CarArchive)
        assert locator is not None
        name, offset, length = _split(locator)
        with open(store.root / name, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
            if len(data) < length:
                handle.truncate(offset + len(data))

    return overwrite


def _split(locator: str) -> tuple[str, int, int]:
    name, span = locator.split("#")
    offset, length = span.split(":")
    return name, int(offset), int(length)


class TestCarArchive(BlobStoreContract):
    seed = 6
    can_delete = False


def _items(count: int, first: int = 600_000) -> list[tuple[BlobKey, bytes, BlobInfo]]:
    out = []
    for number in range(first, first + count):
        signed = event(number)
        out.append((BlobKey.event(signed.id), signed.canonical_bytes(), BlobInfo()))
    media = os.urandom(5000)
    out.append((BlobKey.media(hashlib.sha256(media).hexdigest()), media, BlobInfo()))
    return out


def _mf_raw_cid(data: bytes) -> CID:
    return CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256"))


def test_cid_helpers_agree_with_multiformats() -> None:
    for data in (b"", b"hello", os.urandom(1000)):
        assert raw_cid(data) == bytes(_mf_raw_cid(data))
        assert cid_string(raw_cid(data)) == str(_mf_raw_cid(data))


def test_one_file_per_run_round_trips_through_read_car(tmp_path: Path) -> None:
    archive = CarArchive(tmp_path)
    items = _items(20)
    locators = archive.put_many(items)
    cars = sorted(tmp_path.glob("*.car"))
    assert len(cars) == 1
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.car", cars[0].name)
    assert cars[0].name.split("-")[1][:8] == hashlib.sha256(cars[0].read_bytes()).hexdigest()[:8]
    assert not list(tmp_path.glob(".tmp-*"))

    roots, blocks = read_car(cars[0])
    by_cid = dict(blocks)  # every block was checked against its CID on the way
    assert len(roots) == 1
    assert roots[0].codec.name == "dag-cbor"
    index = dag_cbor.decode(by_cid[roots[0]])
    assert isinstance(index, dict)
    assert set(index) == {str(key) for key, _, _ in items}
    for (key, data, _), locator in zip(items, locators, strict=True):
        assert isinstance(locator, str)
        assert locator.startswith(cars[0].name + "#")
        assert index[str(key)] == _mf_raw_cid(data)
        assert by_cid[_mf_raw_cid(data)] == data
        assert archive.get(key, locator) == data
        _name, offset, length = _split(locator)
        assert cars[0].read_bytes()[offset : offset + length] == data

    sidecar = orjson.loads((tmp_path / f"{cars[0].name}.idx.json").read_bytes())
    assert sidecar["root"] == roots[0].encode("base32")
    for key, data, _ in items:
        entry = sidecar["entries"][str(key)]
        assert entry["cid"] == _mf_raw_cid(data).encode("base32")
        assert f"{cars[0].name}#{entry['offset']}:{entry['length']}" in locators

    archive.put_many(_items(3, first=600_100))
    assert len(list(tmp_path.glob("*.car"))) == 2  # a new run never appends to an old file


def test_readable_by_id_alone_and_sidecars_rebuilt(tmp_path: Path) -> None:
    items = _items(5, first=600_200)
    CarArchive(tmp_path).put_many(items)
    fresh = CarArchive(tmp_path)  # no database, no locators: the sidecar indexes alone
    for key, data, _ in items:
        assert fresh.get(key) == data
        assert fresh.has(key)
    assert set(fresh.list(Namespace.EVENTS)) == {key.digest for key, _, _ in items[:-1]}
    assert list(fresh.list(Namespace.MEDIA)) == [items[-1][0].digest]

    for sidecar in tmp_path.glob("*.idx.json"):
        sidecar.unlink()  # as if a crash came between the CAR file and its sidecar
    rebuilt = CarArchive(tmp_path)
    for key, data, _ in items:
        assert rebuilt.get(key) == data
    assert len(list(tmp_path.glob("*.idx.json"))) == 1


def test_a_damaged_file_without_sidecar_does_not_hide_the_others(tmp_path: Path) -> None:
    good = _items(2, first=600_250)
    CarArchive(tmp_path).put_many(good)
    (tmp_path / "20200101T000000Z-00000000.car").write_bytes(b"\x05garbage")  # damaged, no sidecar
    damaged_sidecar = next(tmp_path.glob("*.idx.json"))
    damaged_sidecar.write_bytes(b"{not json")  # a sidecar is derived data: rebuilt, not trusted
    archive = CarArchive(tmp_path)
    for key, data, _ in good:
        assert archive.get(key) == data
    assert orjson.loads(damaged_sidecar.read_bytes())["entries"]
    report = archive.health()
    assert not report.ok
    assert "20200101T000000Z-00000000.car" in report.detail


def test_already_archived_items_are_not_written_again(tmp_path: Path) -> None:
    archive = CarArchive(tmp_path)
    items = _items(3, first=600_300)
    first = archive.put_many(items)
    assert archive.put_many(items) == first
    assert len(list(tmp_path.glob("*.car"))) == 1
    key, data, _ = items[0]
    replaced = archive.put(key, data, replace=True)  # a forced rewrite is a new one-blob file
    assert replaced != first[0]
    assert archive.get(key, replaced) == data
    assert len(list(tmp_path.glob("*.car"))) == 2
    assert CarArchive(tmp_path).put(key, data) == replaced  # the newest file wins
    name, offset, _ = _split(replaced)
    with open(tmp_path / name, "r+b") as handle:  # damage the newest copy: it must not be reused
        handle.seek(offset)
        handle.write(b"X")
    again = CarArchive(tmp_path).put_many([items[0]])[0]
    assert isinstance(again, str)
    assert again.split("#")[0] not in (name, str(first[0]).split("#")[0])
    assert archive.get(key, again) == data


def test_archives_are_immutable(store: CarArchive) -> None:
    key, data, _ = _items(1, first=600_400)[0]
    locator = store.put(key, data)
    with pytest.raises(StorageError, match="immutable"):
        store.delete(key, locator)
    assert store.get(key, locator) == data


def test_bad_locators_are_refused(store: CarArchive) -> None:
    key = BlobKey.event(event(600_500).id)
    for bad in ["../../etc/passwd#0:10", "x.car#0:10", "20260101T000000Z-0000000g.car#1:1", "nope"]:
        with pytest.raises(StorageError, match="malformed archive locator"):
            store.get(key, bad)
    with pytest.raises(BlobNotFound):
        store.get(key, "20260101T000000Z-00000000.car#0:10")


def test_health_counts_files(store: CarArchive) -> None:
    store.put_many(_items(2, first=600_600))
    report = store.health()
    assert report.ok
    assert report.detail.startswith("1 CAR files")


def test_put_path_streams_and_checks_the_hash(store: CarArchive, tmp_path: Path) -> None:
    source = tmp_path / "media.bin"
    source.write_bytes(os.urandom(100_000))
    key = BlobKey.media(hashlib.sha256(source.read_bytes()).hexdigest())
    locator = store.put_path(key, source)
    assert store.get(key, locator) == source.read_bytes()
    with pytest.raises(StorageError, match="hashes to"):
        store.put_path(BlobKey.media("0" * 64), source)


def test_open_store_from_url(tmp_path: Path) -> None:
    store = open_store(f"car://{tmp_path}/a")
    assert isinstance(store, CarArchive)
    assert store.root == tmp_path / "a"
    assert store.durable
    assert store.cost == 40
    with pytest.raises(Exception, match=r"expected car:///absolute/path"):
        open_store("car://relative/path")


# --- read_car refuses damaged files, naming the offset ------------------------------------------


@pytest.fixture
def car_file(tmp_path: Path) -> Path:
    archive = CarArchive(tmp_path / "a")
    archive.put_many(_items(4, first=600_700))
    return next((tmp_path / "a").glob("*.car"))


def _consume(path: Path) -> None:
    _, blocks = read_car(path)
    for _ in blocks:
        pass


def test_read_car_reports_truncation_with_the_offset(car_file: Path, tmp_path: Path) -> None:
    data = car_file.read_bytes()
    cut = tmp_path / "cut.car"
    cut.write_bytes(data[:-10])
    with pytest.raises(CarFormatError, match=rf"byte \d+: truncated: .* the file ends at byte {len(data) - 10}"):
        _consume(cut)
    cut.write_bytes(data[:5])
    with pytest.raises(CarFormatError, match=r"file ends inside the \d+-byte header"):
        read_car(cut)


def test_read_car_reports_a_flipped_byte_at_its_block(car_file: Path, tmp_path: Path) -> None:
    data = bytearray(car_file.read_bytes())
    sidecar = orjson.loads(car_file.with_name(car_file.name + ".idx.json").read_bytes())
    entry = next(iter(sidecar["entries"].values()))
    data[entry["offset"] + 5] ^= 0x01
    bad = tmp_path / "flipped.car"
    bad.write_bytes(bytes(data))
    with pytest.raises(CarFormatError, match=rf"byte {entry['offset']}: block b\w+: block hashes to") as caught:
        _consume(bad)
    assert caught.value.offset == entry["offset"]


def test_read_car_reports_garbage_and_foreign_files(car_file: Path, tmp_path: Path) -> None:
    data = car_file.read_bytes()
    bad = tmp_path / "bad.car"
    bad.write_bytes(data + b"\xff" * 12)
    with pytest.raises(CarFormatError, match=rf"byte {len(data)}: garbage instead of a section length"):
        _consume(bad)
    bad.write_bytes(data + b"\x00")
    with pytest.raises(CarFormatError, match=rf"byte {len(data)}: zero-length section"):
        _consume(bad)
    bad.write_bytes(b"PK\x03\x04 not a car at all")  # a zip: 'P' reads as a header of 80 bytes
    with pytest.raises(CarFormatError, match="byte 21: file ends inside the 80-byte header"):
        read_car(bad)
    bad.write_bytes(b"\x0a" + b"\xff" * 10)
    with pytest.raises(CarFormatError, match="byte 1: header is not DAG-CBOR"):
        read_car(bad)
    header = dag_cbor.encode({"roots": [], "version": 2})
    assert isinstance(header, bytes)
    bad.write_bytes(bytes([len(header)]) + header)
    with pytest.raises(CarFormatError, match="version is 2, expected 1"):
        read_car(bad)


# --- interop with @ipld/car (tests/vectors/car/README.md) ---------------------------------------


def _vectors() -> dict[str, object]:
    loaded = orjson.loads((VECTORS / "vectors.json").read_bytes())
    assert isinstance(loaded, dict)
    return loaded


def test_read_car_reads_files_written_by_ipld_car() -> None:
    vectors = _vectors()
    for described in vectors["files"]:  # type: ignore[attr-defined]
        roots, blocks = read_car(VECTORS / described["file"])
        assert [root.encode("base32") for root in roots] == described["roots"]
        assert [{"cid": cid.encode("base32"), "length": len(block)} for cid, block in blocks] == described["blocks"]


def test_archive_writes_the_bytes_ipld_car_writes(tmp_path: Path) -> None:
    # Same blocks in the same order (index root first): CarArchive's file must be byte-identical.
    vectors = _vectors()
    media = vectors["media"]
    assert isinstance(media, dict)
    items = [(BlobKey.media(sha), text.encode(), BlobInfo()) for sha, text in media.items()]
    archive = CarArchive(tmp_path)
    archive.put_many(items)
    written = next(tmp_path.glob("*.car"))
    assert written.read_bytes() == (VECTORS / "archive.car").read_bytes()


def test_archive_reads_a_car_it_did_not_write(tmp_path: Path) -> None:
    # A file from another writer, without a sidecar: found by address once its index is rebuilt.
    (tmp_path / "20200101T000000Z-00000000.car").write_bytes((VECTORS / "archive.car").read_bytes())
    archive = CarArchive(tmp_path)
    media = _vectors()["media"]
    assert isinstance(media, dict)
    for sha, text in media.items():
        assert archive.get(BlobKey.media(sha)) == text.encode()


def _node_verifier() -> list[str]:
    node = shutil.which("node")
    if node is None or not (VECTORS / "node_modules" / "@ipld" / "car").is_dir():
        pytest.skip("needs node and @ipld/car: npm ci --prefix tests/vectors/car")
    return [node, str(VECTORS / "verify.mjs")]


@pytest.mark.node
def test_ipld_car_reads_and_verifies_an_archive_file(tmp_path: Path) -> None:
    command = _node_verifier()
    items = _items(10, first=600_800)
    CarArchive(tmp_path).put_many(items)
    written = next(tmp_path.glob("*.car"))
    done = subprocess.run([*command, str(written)], capture_output=True, check=False, timeout=60)
    report = orjson.loads(done.stdout)
    assert done.returncode == 0, report
    roots, blocks = read_car(written)
    assert report["roots"] == [root.encode("base32") for root in roots]
    assert report["blocks"] == [{"cid": cid.encode("base32"), "length": len(block)} for cid, block in blocks]
    assert report["index"] == {str(key): _mf_raw_cid(data).encode("base32") for key, data, _ in items}


@pytest.mark.node
def test_ipld_car_refuses_what_read_car_refuses(car_file: Path, tmp_path: Path) -> None:
    command = _node_verifier()
    data = bytearray(car_file.read_bytes())
    data[-3] ^= 0x01  # inside the last block
    bad = tmp_path / "flipped.car"
    bad.write_bytes(bytes(data))
    done = subprocess.run([*command, str(bad)], capture_output=True, check=False, timeout=60)
    assert done.returncode == 1
    assert "does not match its CID" in orjson.loads(done.stdout)["error"]
    with pytest.raises(CarFormatError, match="block hashes to"):
        _consume(bad)
