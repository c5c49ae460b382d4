"""Cold archive in CARv1 files (``car:///var/lib/stave/archive``): immutable, self-describing.

Each archive run (one ``put_many`` call) writes **one new file**, never appending to an old one:
``<UTC time>-<first 8 hex of the file's SHA-256>.car``, e.g. ``20261125T143755.123456Z-1a2b3c4d.car``.
The file is written under a temporary name, fsynced, renamed, and the directory fsynced, so a
crash leaves either no archive file or a whole one.

Layout (https://ipld.io/specs/transport/car/carv1/)::

    varint(len) DAG-CBOR {"roots": [<index CID>], "version": 1}       the header
    varint(len) <index CID> <index block>                             the root
    varint(len) <block CID> <block bytes>   …                         one per stored blob

Every blob is a raw block (CIDv1, codec raw 0x55, sha2-256), so ``ipfs dag import`` or any CAR
reader can check each block against its CID. The root is a DAG-CBOR block mapping each address
(``events/<id>``, ``media/<sha256>``) to its block's CID: the file alone says what it holds.
With a large run the index block grows past 1 MiB (about 9,000 entries), which CAR readers
accept but IPFS will not move between nodes as one block: keep runs smaller if the files are
meant for ``ipfs dag import`` on a node that must serve them.

Beside each file, ``<file>.idx.json`` maps address → ``{cid, offset, length}`` of the block
bytes, so a read is one seek. The locator ``put`` returns is ``<file name>#<offset>:<length>``;
``get`` reads exactly that slice and the base class verifies it. Without a locator the key is
looked up in the sidecar indexes (all of them, cached in memory), so the archive can be read by
id alone, without stave's database; a missing sidecar is rebuilt from its CAR file. The newest
file wins when a key was archived twice (``put(..., replace=True)`` writes a new file).

Archives are immutable: ``delete`` refuses (drop a whole file by hand once nothing refers to
it). A single ``put`` writes a one-blob file; the archive is meant for batches.

Production alternative: an S3 prefix in an archive storage class (e.g. Glacier Instant
Retrieval, which still serves ranged GETs). The extension point is the group of *storage
operations* of :class:`CarArchive` (``_publish``, ``_car_names``, ``_car_size``, ``_open_car``,
``_read_sidecar``, ``_write_sidecar``, ``_index_car``, ``_health``): a subclass that uploads the
finished temporary file and its sidecar, lists the prefix and reads byte ranges needs nothing
else; the format, the locators and the index cache stay as they are. Not implemented here.

:func:`read_car` parses and verifies a whole CAR file from any writer (used by the tests and a
future ``stave store verify-archive``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Final
from urllib.parse import parse_qs, unquote, urlsplit

import dag_cbor
import orjson
from multiformats import CID

from stave.errors import BlobNotFound, ConfigError, IntegrityError, StorageError
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace

__all__ = ["CarArchive", "CarFormatError", "cid_string", "raw_cid", "read_car"]

_CHUNK: Final = 1 << 20
_TMP_PREFIX: Final = ".tmp-"
_IDX_SUFFIX: Final = ".idx.json"
# CIDv1 prefixes, written by hand: building multiformats CID objects costs ~0.25 ms each, which
# adds up to minutes for a million-event run. The tests check these bytes against multiformats.
_RAW_SHA256: Final = bytes([0x01, 0x55, 0x12, 0x20])  # v1, raw, sha2-256, 32 bytes
_CBOR_SHA256: Final = bytes([0x01, 0x71, 0x12, 0x20])  # v1, dag-cbor, sha2-256, 32 bytes
_MAX_HEADER: Final = 1 << 20  # a header holds a few CIDs; a huge length means garbage
_NAME = re.compile(r"[0-9]{8}T[0-9]{6}(?:\.[0-9]{1,9})?Z-[0-9a-f]{8}\.car\Z")
_LOCATOR = re.compile(r"(?P<name>[^#/\\]+)#(?P<offset>[0-9]{1,15}):(?P<length>[0-9]{1,15})\Z")
# multihash code → (hash function, digest length); identity (0x00) is handled apart
_HASHES: Final = {0x12: ("sha256", 32), 0x13: ("sha512", 64)}


class CarFormatError(IntegrityError):
    """A CAR file is malformed or a block does not match its CID; ``offset`` is where."""

    def __init__(self, path: Path | str, offset: int, detail: str) -> None:
        self.path = str(path)
        self.offset = offset
        super().__init__(f"{path}: byte {offset}: {detail}")


# --- CIDs and varints --------------------------------------------------------------------


def raw_cid(data: bytes) -> bytes:
    """The binary CIDv1 (raw, sha2-256) of ``data``: what IPFS names a raw block."""
    return _RAW_SHA256 + hashlib.sha256(data).digest()


def cid_string(cid: bytes) -> str:
    """The canonical text form of a binary CIDv1: multibase base32, lower case (``bafk…``)."""
    return "b" + base64.b32encode(cid).decode("ascii").lower().rstrip("=")


def _text(cid: bytes) -> str:
    """Any binary CID as text for messages: CIDv0 in base58 (``Qm…``), CIDv1 in base32."""
    return str(CID.decode(cid)) if cid[0] == 0x12 else cid_string(cid)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position), or None if ``data`` ends inside the varint. Max 9 bytes (2^63)."""
    value = shift = 0
    for index in range(pos, min(len(data), pos + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    if len(data) - pos >= 9:
        raise ValueError("varint longer than 9 bytes")
    return None


def _parse_cid(data: bytes) -> tuple[bytes, int, int, bytes]:
    """The CID at the start of a section body: (CID bytes, multihash code, where it ends, digest)."""
    if len(data) >= 34 and data[0] == 0x12 and data[1] == 0x20:  # CIDv0: a bare sha2-256 multihash
        return data[:34], 0x12, 34, data[2:34]
    fields = []
    pos = 0
    for what in ("version", "codec", "multihash code", "digest length"):
        parsed = _read_varint(data, pos)
        if parsed is None:
            raise ValueError(f"section ends inside the CID's {what}")
        fields.append(parsed[0])
        pos = parsed[1]
    version, _codec, code, length = fields
    if version != 1:
        raise ValueError(f"CID version {version} (only 0 and 1 exist)")
    if pos + length > len(data):
        raise ValueError(f"section ends inside the CID's {length}-byte digest")
    return data[: pos + length], code, pos + length, data[pos : pos + length]


def _check_block(code: int, digest: bytes, block: bytes) -> str | None:
    """Why ``block`` does not match its CID's multihash, or None if it does."""
    if code == 0x00:  # identity: the "digest" is the block itself
        return None if digest == block else "identity CID does not hold the block"
    if code not in _HASHES:
        return f"multihash 0x{code:x} is not supported (sha2-256, sha2-512, identity are)"
    function, size = _HASHES[code]
    if len(digest) != size:
        return f"{function} digest is {len(digest)} bytes, not {size}"
    actual = hashlib.new(function, block).digest()
    return None if actual == digest else f"block hashes to {actual.hex()}, its CID says {digest.hex()}"


# --- reading and verifying a whole file -----------------------------------------------------


def _read_header(path: Path, handle: BinaryIO) -> tuple[list[CID], int]:
    head = handle.read(16)
    parsed = _read_varint(head, 0)
    if parsed is None or parsed[0] == 0:
        raise CarFormatError(path, 0, "not a CAR file: no header length")
    length, start = parsed
    if length > _MAX_HEADER:
        raise CarFormatError(path, 0, f"header length {length} is implausible: not a CAR file")
    handle.seek(start)
    raw = handle.read(length)
    if len(raw) < length:
        raise CarFormatError(path, start + len(raw), f"file ends inside the {length}-byte header")
    try:
        header = dag_cbor.decode(raw)
    except Exception as exc:  # dag_cbor raises several types for bad input
        raise CarFormatError(path, start, f"header is not DAG-CBOR: {exc}") from None
    if not isinstance(header, dict) or header.get("version") != 1:
        version = header.get("version") if isinstance(header, dict) else None
        raise CarFormatError(path, start, f"header version is {version!r}, expected 1 (CARv1)")
    roots = header.get("roots")
    if not isinstance(roots, list) or not all(isinstance(root, CID) for root in roots):
        raise CarFormatError(path, start, "header 'roots' is not a list of CIDs")
    return [root for root in roots if isinstance(root, CID)], start + length


def _sections(path: Path, start: int) -> Iterator[tuple[bytes, int, bytes]]:
    """(CID bytes, offset of the block bytes, block) per section, each verified against its CID."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        while offset < size:
            head = handle.read(min(10, size - offset))
            try:
                parsed = _read_varint(head, 0)
            except ValueError as exc:
                raise CarFormatError(path, offset, f"garbage instead of a section length: {exc}") from None
            if parsed is None:
                raise CarFormatError(path, offset, "file ends inside a section length")
            length, used = parsed
            if length == 0:
                raise CarFormatError(path, offset, "zero-length section")
            body_at = offset + used
            if body_at + length > size:
                raise CarFormatError(
                    path, offset, f"truncated: the section needs {length} bytes, the file ends at byte {size}"
                )
            handle.seek(body_at)
            body = handle.read(length)
            try:
                cid, code, cid_end, digest = _parse_cid(body)
            except ValueError as exc:
                raise CarFormatError(path, body_at, f"bad CID: {exc}") from None
            block = body[cid_end:]
            problem = _check_block(code, digest, block)
            if problem is not None:
                raise CarFormatError(path, body_at + cid_end, f"block {_text(cid)}: {problem}")
            yield cid, body_at + cid_end, block
            offset = body_at + length


def read_car(path: Path | str) -> tuple[list[CID], Iterator[tuple[CID, bytes]]]:
    """Parse and verify a CARv1 file: (roots, iterator of (CID, block)).

    The header is checked at once; each block is checked against its CID as the iterator
    reaches it. Every problem (truncation, garbage, a block that does not hash to its CID,
    CARv2) raises :class:`CarFormatError` naming the byte offset. The file is opened per
    pass, so an iterator that is never consumed holds nothing open.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        roots, start = _read_header(path, handle)

    def blocks() -> Iterator[tuple[CID, bytes]]:
        for cid, _, block in _sections(path, start):
            yield CID.decode(cid), block

    return roots, blocks()


def _index_of(path: Path) -> dict[str, dict[str, object]]:
    """Rebuild a sidecar index from a CAR file written by :class:`CarArchive` (verifying it)."""
    with open(path, "rb") as handle:
        roots, start = _read_header(path, handle)
    located: dict[bytes, tuple[int, int]] = {}
    blocks: dict[bytes, bytes] = {}
    wanted = {bytes(root) for root in roots}
    for section_cid, offset, block in _sections(path, start):
        located.setdefault(section_cid, (offset, len(block)))
        if section_cid in wanted:
            blocks[section_cid] = block
    if len(roots) != 1 or bytes(roots[0]) not in blocks:
        raise CarFormatError(path, 0, "not a stave archive: expected one root, an index block in the file")
    root_at = located[bytes(roots[0])][0]
    mapping = dag_cbor.decode(blocks[bytes(roots[0])])
    if not isinstance(mapping, dict):
        raise CarFormatError(path, root_at, "the root block is not an address → CID map")
    entries: dict[str, dict[str, object]] = {}
    for address, cid in mapping.items():
        if not isinstance(cid, CID) or bytes(cid) not in located:
            raise CarFormatError(path, root_at, f"{address}: its block is not in the file")
        offset, length = located[bytes(cid)]
        entries[address] = {"cid": cid_string(bytes(cid)), "offset": offset, "length": length}
    return entries


# --- the archive ---------------------------------------------------------------------------

# what goes into a file: (address, CID bytes, the block as bytes or a file to copy, its length)
_Block = tuple[str, bytes, "bytes | Path", int]


class CarArchive(BlobStore):
    scheme = "car"
    cost = 40

    def __init__(self, root: Path | str, name: str | None = None, *, fsync: bool = True, **limits: int) -> None:
        self.root = Path(root)
        super().__init__(name or f"car:{self.root}", **limits)
        self.fsync = fsync  # off only for benchmarks, never in service
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, tuple[str, int, int]] = {}  # address → (file, offset, length)
        self._loaded: set[str] = set()  # CAR files whose index is in ``_index``
        self.unreadable: dict[str, str] = {}  # CAR files that could not be indexed → why

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> CarArchive:
        """``car:///absolute/path`` (``?fsync=0`` only for benchmarks)."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(f"store URL {url!r}: expected car:///absolute/path")
        fsync = parse_qs(parts.query).get("fsync", ["1"])[0] not in ("0", "false", "no")
        return cls(unquote(parts.path), name=name, fsync=fsync)

    # --- the contract ------------------------------------------------------------------------

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        if not replace and (known := self._archived(key, data)) is not None:
            return known
        return self._archive([(str(key), raw_cid(data), data, len(data))])[str(key)]

    def put_many(self, items: Sequence[tuple[BlobKey, bytes, BlobInfo]]) -> list[str | StorageError | None]:
        """Write one new CAR file holding every item not archived yet; per item its locator.

        An item whose exact bytes an earlier file already holds gets that file's locator, so a
        run repeated after a crash (before stave's index recorded it) adds nothing.
        """
        results: dict[int, str | StorageError] = {}
        blocks: list[_Block] = []
        for position, (key, data, _) in enumerate(items):
            try:
                self._check_size(key, len(data))
            except StorageError as exc:
                results[position] = exc
                continue
            if (known := self._archived(key, data)) is not None:
                results[position] = known
            else:
                blocks.append((str(key), raw_cid(data), data, len(data)))
        locators: dict[str, str] | StorageError = {}
        if blocks:
            try:
                locators = self._call("put", items[0][0], lambda: self._archive(blocks))
            except StorageError as exc:
                locators = exc
        return [
            results.get(position) or (locators if isinstance(locators, StorageError) else locators[str(key)])
            for position, (key, _, _) in enumerate(items)
        ]

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        name, offset, length = self._find(key, locator)
        return self._read_slice(name, offset, length)

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        try:
            name, offset, length = self._find(key, locator)
        except BlobNotFound:
            return False
        size = self._car_size(name)
        return size is not None and size >= offset + length

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        raise StorageError(f"{self.name}: archives are immutable; {key} cannot be deleted from its CAR file")

    def _list(self, namespace: Namespace) -> Iterator[str]:
        self._refresh()
        prefix = f"{namespace.value}/"
        with self._lock:
            addresses = sorted(address for address in self._index if address.startswith(prefix))
        for address in addresses:
            yield address[len(prefix) :]

    def _health(self) -> str:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")
        self._refresh()
        if self.unreadable:
            problems = "; ".join(f"{name}: {problem}" for name, problem in sorted(self.unreadable.items()))
            raise StorageError(f"{len(self.unreadable)} archive files cannot be indexed: {problems}")
        sizes = [self._car_size(name) or 0 for name in self._car_names()]
        return f"{len(sizes)} CAR files, {sum(sizes) / 2**20:.1f} MiB"

    # --- media, streamed ---------------------------------------------------------------------

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        """Archive a file without reading it whole: one pass to hash it, one to copy it in."""
        self._check_size(key, source.stat().st_size)

        def archive() -> str:
            digest = hashlib.sha256()
            size = 0
            with open(source, "rb") as reader:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            if key.namespace is Namespace.MEDIA and digest.hexdigest() != key.digest:
                raise IntegrityError(f"{self.name}: {key}: file hashes to {digest.hexdigest()}")
            return self._archive([(str(key), _RAW_SHA256 + digest.digest(), source, size)])[str(key)]

        return self._call("put", key, archive)

    def get_to_path(self, key: BlobKey, destination: Path, locator: str | None = None) -> None:
        """Copy a media blob out in chunks, verifying its SHA-256; events are verified whole."""
        if key.namespace is Namespace.EVENTS:
            super().get_to_path(key, destination, locator)
            return

        def copy() -> str:
            name, offset, length = self._find(key, locator)
            digest = hashlib.sha256()
            with self._open_car(name) as reader, open(destination, "wb") as writer:
                reader.seek(offset)
                left = length
                while left and (chunk := reader.read(min(_CHUNK, left))):
                    digest.update(chunk)
                    writer.write(chunk)
                    left -= len(chunk)
            return digest.hexdigest()

        actual = self._call("get", key, copy)
        if actual != key.digest:
            destination.unlink(missing_ok=True)
            raise IntegrityError(f"{self.name}: {key}: copy hashes to {actual}")

    # --- writing a file ----------------------------------------------------------------------

    def _archive(self, blocks: Sequence[_Block]) -> dict[str, str]:
        """Write one CAR file and its sidecar; return address → locator."""
        mapping: dict[str, dag_cbor.IPLDKind] = {}
        for address, cid, _, _ in blocks:
            mapping.setdefault(address, CID.decode(cid))
        index_block = _encode(mapping)
        index_cid = _CBOR_SHA256 + hashlib.sha256(index_block).digest()
        header = _encode({"roots": [CID.decode(index_cid)], "version": 1})

        temp = self.root / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        entries: dict[str, dict[str, object]] = {}
        try:
            with open(temp, "wb") as out:

                def write(chunk: bytes) -> None:
                    out.write(chunk)
                    digest.update(chunk)

                write(_varint(len(header)) + header)
                # the root (index) block first, so a reader streaming the file knows what follows
                write(_varint(len(index_cid) + len(index_block)) + index_cid + index_block)
                written: dict[bytes, int] = {}  # identical blocks are stored once
                for address, cid, payload, length in blocks:
                    if cid not in written:
                        write(_varint(len(cid) + length) + cid)
                        written[cid] = out.tell()
                        if isinstance(payload, bytes):
                            write(payload)
                        elif _copy_into(payload, length, write) != cid[len(_RAW_SHA256) :]:
                            raise IntegrityError(f"{self.name}: {payload} changed while it was archived")
                    entries.setdefault(address, {"cid": cid_string(cid), "offset": written[cid], "length": length})
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            name = f"{stamp}-{digest.hexdigest()[:8]}.car"
            sidecar = {"version": 1, "car": name, "root": cid_string(index_cid), "entries": entries}
            self._publish(temp, name, orjson.dumps(sidecar, option=orjson.OPT_SORT_KEYS))
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self._remember(name, entries)
        return {address: f"{name}#{entry['offset']}:{entry['length']}" for address, entry in entries.items()}

    # --- storage operations: what an S3 subclass (archive storage class) would override ------

    def _publish(self, temp: Path, name: str, sidecar: bytes) -> None:
        """Make a finished CAR file (a local temporary file) and its sidecar visible, durably."""
        os.replace(temp, self.root / name)  # the name holds the content hash: same name, same bytes
        self._write_sidecar(name, sidecar)
        if self.fsync:
            _fsync_directory(self.root)

    def _car_names(self) -> list[str]:
        """Every finished CAR file, oldest first (names start with their UTC time)."""
        return sorted(entry.name for entry in self.root.iterdir() if _NAME.match(entry.name))

    def _car_size(self, name: str) -> int | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.root / name).stat().st_size
        return None

    def _open_car(self, name: str) -> BinaryIO:
        """The CAR file for ranged reads (``seek`` + ``read``; an S3 subclass: ranged GETs)."""
        try:
            return open(self.root / name, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"{self.name}: archive file {name} does not exist") from None

    def _read_sidecar(self, name: str) -> bytes | None:
        with contextlib.suppress(FileNotFoundError):
            return (self.root / f"{name}{_IDX_SUFFIX}").read_bytes()
        return None

    def _write_sidecar(self, name: str, data: bytes) -> None:
        path = self.root / f"{name}{_IDX_SUFFIX}"
        temp = path.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with open(temp, "wb") as out:
                out.write(data)
                if self.fsync:
                    os.fsync(out.fileno())
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def _index_car(self, name: str) -> dict[str, dict[str, object]]:
        """Rebuild a sidecar's entries by reading (and verifying) the whole CAR file."""
        return _index_of(self.root / name)

    # --- reading -----------------------------------------------------------------------------

    def _read_slice(self, name: str, offset: int, length: int) -> bytes:
        """Exactly the bytes of one block (short if the file was truncated: verification refuses it)."""
        with self._open_car(name) as reader:
            reader.seek(offset)
            return reader.read(length)

    def _archived(self, key: BlobKey, data: bytes) -> str | None:
        """The locator of an archived copy of exactly ``data`` under ``key``, if there is one."""
        known = self._lookup(str(key))
        if known is None:
            return None
        try:
            same = self._read_slice(*known) == data  # a damaged copy is not reused
        except BlobNotFound:
            return None
        return _locator(*known) if same else None

    def _find(self, key: BlobKey, locator: str | None) -> tuple[str, int, int]:
        if locator is not None:
            match = _LOCATOR.match(locator)
            if match is None or not _NAME.match(match["name"]):
                raise StorageError(f"{self.name}: {key}: malformed archive locator {locator!r}")
            length = int(match["length"])
            if length > self._limit(key):
                raise IntegrityError(f"{self.name}: {key}: locator {locator!r} names a block over the size limit")
            return match["name"], int(match["offset"]), length
        known = self._lookup(str(key))
        if known is None:
            raise BlobNotFound(f"{self.name}: {key} is in no archive file")
        return known

    def _lookup(self, address: str) -> tuple[str, int, int] | None:
        with self._lock:
            known = self._index.get(address)
        if known is None and self._refresh():  # written by another process since we looked
            with self._lock:
                known = self._index.get(address)
        return known

    def _refresh(self) -> bool:
        """Load the sidecars of CAR files not seen yet, rebuilding missing or unreadable ones.

        A file that cannot be indexed at all (damaged, and its sidecar lost) is skipped and
        reported by ``health``: one bad file must not make the others unreadable.
        """
        with self._lock:
            new = [name for name in self._car_names() if name not in self._loaded]
        for name in new:
            try:
                entries = orjson.loads(self._read_sidecar(name) or b"null")["entries"]
                if not isinstance(entries, dict):
                    raise TypeError("no entries")
            except (orjson.JSONDecodeError, KeyError, TypeError):  # missing (a crash came first) or damaged
                try:
                    entries = self._index_car(name)
                except IntegrityError as exc:
                    self.unreadable[name] = str(exc)
                    entries = {}
                else:
                    self._write_sidecar(name, orjson.dumps({"version": 1, "car": name, "entries": entries}))
            self._remember(name, entries)
        return bool(new)

    def _remember(self, name: str, entries: dict[str, dict[str, object]]) -> None:
        with self._lock:
            if name in self._loaded:
                return
            for address, entry in entries.items():
                offset, length = entry["offset"], entry["length"]
                if isinstance(offset, int) and isinstance(length, int):
                    current = self._index.get(address)
                    if current is None or current[0] <= name:  # the newest file wins
                        self._index[address] = (name, offset, length)
            self._loaded.add(name)


def _locator(name: str, offset: int, length: int) -> str:
    return f"{name}#{offset}:{length}"


def _encode(value: dag_cbor.IPLDKind) -> bytes:
    encoded = dag_cbor.encode(value)
    assert isinstance(encoded, bytes)  # bytes when no stream is given
    return encoded


def _copy_into(source: Path, length: int, write: Callable[[bytes], None]) -> bytes:
    """Copy exactly ``length`` bytes of ``source`` through ``write``; return their SHA-256."""
    digest = hashlib.sha256()
    left = length
    with open(source, "rb") as reader:
        while left and (chunk := reader.read(min(_CHUNK, left))):
            write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    if left:
        raise StorageError(f"{source} shrank while it was archived")
    return digest.digest()


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
