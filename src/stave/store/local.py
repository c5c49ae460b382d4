"""Local filesystem driver (``file:///var/lib/stave/events``).

Objects live at ``<root>/<namespace>/<d[0:2]>/<d[2:4]>/<digest>`` (``.json`` for events), two
levels of 256 shards so no directory grows past a few thousand entries at a billion objects.
A write goes to a temporary file in the target directory, is made durable, then linked into
place (``link`` fails if the name exists, so a write never replaces a copy unless asked to) and
the new name is made durable: a crash leaves either no object or a whole one, never a torn one
under a real name. Temporary files left by a crash are ignored by reads and removed by ``scrub``.

**Durability per batch, not per file.** On Linux a batch is made durable with two ``syncfs``
calls (one after writing every temporary file, one after linking them all), whatever its size,
instead of an ``fsync`` per file and per directory: at a dozen events per group commit that is
about six times less time and CPU (``docs/storage/local.md`` has the figures). ``syncfs``
reports write-back errors since Linux 5.8; where it is missing, or with ``?sync=fsync``, each
file and directory is fsynced as before. ``syncfs`` flushes the whole file system, so a backend
sharing its disk with heavy unrelated writers should use ``?sync=fsync``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from stave.errors import BlobNotFound, ConfigError, IntegrityError, StorageError
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace

__all__ = ["LocalStore"]

_CHUNK = 1 << 20
_TMP_PREFIX = ".tmp-"
SYNC_MODES = ("syncfs", "fsync", "none")


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs(2)`` (Linux 2.6.39+, errors reported since 5.8), or None where missing."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SYNCFS = _load_syncfs()


class LocalStore(BlobStore):
    scheme = "file"
    cost = 10

    def __init__(
        self,
        root: Path | str,
        name: str | None = None,
        *,
        fsync: bool = True,
        sync: str | None = None,
        **limits: int,
    ) -> None:
        self.root = Path(root)
        super().__init__(name or f"file:{self.root}", **limits)
        if sync is None:
            sync = ("syncfs" if _SYNCFS is not None else "fsync") if fsync else "none"
        if sync not in SYNC_MODES:
            raise ConfigError(f"store {self.name}: sync={sync!r}, expected one of {', '.join(SYNC_MODES)}")
        if sync == "syncfs" and _SYNCFS is None:
            raise ConfigError(f"store {self.name}: sync=syncfs needs Linux's syncfs(2); use sync=fsync")
        self.sync = sync
        self.fsync = sync != "none"  # off only for benchmarks of the code around it, never in service
        # A backend that is broken at start-up is reported by health and writes, not by a crash:
        # the others may still make a quorum.
        with contextlib.suppress(OSError):
            self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> LocalStore:
        """``file:///absolute/path`` (``?sync=syncfs|fsync``; ``?fsync=0`` only for benchmarks)."""
        path, query, fsync = parse_directory_url(url, "file:///absolute/path")
        sync = query.get("sync", [None])[0]
        if sync is not None and sync not in SYNC_MODES[:2]:
            raise ConfigError(f"store URL {url!r}: sync={sync!r}, expected syncfs or fsync")
        return cls(path, name=name, fsync=fsync, sync=sync if fsync else "none")

    def path(self, key: BlobKey) -> Path:
        digest = key.digest
        suffix = ".json" if key.namespace is Namespace.EVENTS else ""
        return self.root / key.namespace.value / digest[:2] / digest[2:4] / f"{digest}{suffix}"

    # --- the contract ------------------------------------------------------------------------

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        self._put_many([(key, data)], replace)
        return None

    def put_many(self, items: Sequence[tuple[BlobKey, bytes, BlobInfo]]) -> list[str | StorageError | None]:
        """Write several blobs with one fsync per directory: the group commit of ingest."""
        for key, data, _ in items:
            self._check_size(key, len(data))
        if not items:
            return []
        pairs = [(key, data) for key, data, _ in items]
        try:
            self._call("put", items[0][0], lambda: self._put_many(pairs, False))
        except StorageError as exc:
            return [exc] * len(items)
        return [None] * len(items)

    def _put_many(self, items: Sequence[tuple[BlobKey, bytes]], replace: bool) -> None:
        # Plain strings and os calls, not pathlib: this is the ingest hot path, per event and backend.
        per_file = self.sync == "fsync"
        root = os.fspath(self.root)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        pending: list[tuple[str, str]] = []
        try:
            for key, data in items:
                digest = key.digest
                directory = f"{root}/{key.namespace.value}/{digest[:2]}/{digest[2:4]}"
                final = f"{directory}/{digest}.json" if key.namespace is Namespace.EVENTS else f"{directory}/{digest}"
                temp = f"{directory}/{_TMP_PREFIX}{os.urandom(12).hex()}"
                try:
                    fd = os.open(temp, flags, 0o644)
                except FileNotFoundError:  # first object in this shard: make the directories
                    self._make_directories(Path(directory))
                    fd = os.open(temp, flags, 0o644)
                pending.append((temp, final))
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    if per_file:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            if self.sync == "syncfs":
                self._syncfs()  # (1) every byte durable before any real name points at it
            directories = set()
            for temp, final in pending:
                self._install(temp, final, replace)
                directories.add(os.path.dirname(final))
            # Unlink the temporaries before the directory sync, so one sync covers both changes.
            for temp, _ in pending:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            if self.sync == "syncfs":
                self._syncfs()  # (2) the names durable: only now is the batch acknowledged
            elif per_file:
                for directory in directories:
                    _fsync_directory(directory)
        finally:
            for temp, _ in pending:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def _syncfs(self) -> None:
        assert _SYNCFS is not None
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                code = ctypes.get_errno()
                raise OSError(code, f"syncfs: {os.strerror(code) if code else 'failed'}")
        finally:
            os.close(fd)

    def _make_directories(self, directory: Path) -> None:
        """Create the shard directories and make their names durable too."""
        if self.sync != "fsync":  # with syncfs, the batch's syncs cover the new names too
            os.makedirs(directory, exist_ok=True)
            return
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
            _fsync_directory(new.parent)

    @staticmethod
    def _install(temp: str | Path, final: str | Path, replace: bool) -> None:
        if replace:
            os.replace(temp, final)
            return
        with contextlib.suppress(FileExistsError):  # same address, same content: idempotent
            os.link(temp, final)  # atomic create-only

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"{self.name}: {key} not found") from None

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        return self.path(key).is_file()

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(key).unlink()

    def _list(self, namespace: Namespace) -> Iterator[str]:
        base = self.root / namespace.value
        if not base.is_dir():
            return
        for first in sorted(base.iterdir()):
            if not first.is_dir():
                continue
            for second in sorted(first.iterdir()):
                if not second.is_dir():
                    continue
                for entry in sorted(second.iterdir()):
                    name = entry.name.removesuffix(".json")
                    if not entry.name.startswith(_TMP_PREFIX) and len(name) == 64:
                        yield name

    def _health(self) -> str:
        """A real write: a probe file written, fsynced and removed (finds full or read-only disks)."""
        if not self.root.is_dir():
            raise StorageError(f"{self.root} is not a directory")
        probe = self.root / f"{_TMP_PREFIX}health-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"ok")
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(FileNotFoundError):
                probe.unlink()
        usage = shutil.disk_usage(self.root)
        return f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB"

    # --- media, streamed -------------------------------------------------------------------

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        """Copy a file in chunks (never whole into memory), verifying its SHA-256 on the way."""
        self._check_size(key, source.stat().st_size)
        self._call("put", key, lambda: self._copy_in(key, source))
        return None

    def get_to_path(self, key: BlobKey, destination: Path, locator: str | None = None) -> None:
        """Copy out in chunks, verifying the SHA-256 of media; events are small and verified whole."""
        if key.namespace is Namespace.EVENTS:
            super().get_to_path(key, destination, locator)
            return
        source = self.open_path(key)
        digest = hashlib.sha256()
        with open(source, "rb") as reader, open(destination, "wb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                writer.write(chunk)
        if digest.hexdigest() != key.digest:
            destination.unlink()
            raise IntegrityError(f"{self.name}: {key}: copy hashes to {digest.hexdigest()}")

    def _copy_in(self, key: BlobKey, source: Path) -> None:
        final = self.path(key)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as reader, open(temp, "wb") as writer:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
                if self.fsync:
                    os.fsync(writer.fileno())
            if key.namespace is Namespace.MEDIA and digest.hexdigest() != key.digest:
                raise IntegrityError(f"{self.name}: {key}: file hashes to {digest.hexdigest()}")
            self._install(temp, final, replace=False)
            if self.fsync:
                _fsync_directory(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def open_path(self, key: BlobKey) -> Path:
        """The file of a stored blob, for streaming it out (the caller verifies as it reads)."""
        path = self.path(key)
        if not path.is_file():
            raise BlobNotFound(f"{self.name}: {key} not found")
        return path

    def remove_temporaries(self, min_age: float = 3600.0) -> int:
        """Delete temporary files a crash left behind, untouched for ``min_age`` seconds (a write
        in progress, even of a large media file, is younger); returns how many."""
        removed = 0
        cutoff = time.time() - min_age
        for path in self.root.rglob(f"{_TMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
        return removed


def parse_directory_url(url: str, expected: str) -> tuple[str, dict[str, list[str]], bool]:
    """The directory, the query and the ``fsync`` flag of a local driver's URL (``expected``
    shows its form in the error): ``scheme:///absolute/path``, ``?fsync=0`` only for benchmarks."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise ConfigError(f"store URL {url!r}: expected {expected}")
    query = parse_qs(parts.query)
    fsync = query.get("fsync", ["1"])[0] not in ("0", "false", "no")
    return unquote(parts.path), query, fsync


def _fsync_directory(directory: str | Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
