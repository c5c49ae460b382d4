"""A local witness file (``witness:///var/lib/stave/witness.log``): the embedded default ledger.

This is NOT a blockchain and proves far less than one: it is a file on this machine, and
whoever can write it can rewrite it whole, times included. What it does give is an
append-only, hash-chained record that makes *partial* tampering evident, a place to anchor
when no real ledger is configured, and the same receipts and verification path as the real
drivers. Use a public ledger (EVM, Hedera) for evidence that others need not take on trust.

Each line is one entry, compact JSON with sorted keys::

    {"hash":"…","payload":"stave-anchor:v1:…","prev":"…","seq":3,"time":1767225600000,"v":1}

``seq`` is the line number (from 1); ``prev`` the previous entry's ``hash`` (64 zeros on line
1); ``time`` this machine's clock in Unix milliseconds; ``hash`` the SHA-256 of the entry's
canonical JSON without ``hash``. A line must be exactly that canonical form, so every byte of
a line is covered by its hash and, through ``prev``, by every later line: change one byte
and :func:`verify_file` names the line.

Appends take an exclusive ``flock`` on the file, check the chain, and write one line with a
single ``write`` on an ``O_APPEND`` descriptor, then fsync the file and its directory before
a receipt is returned. Anchoring the same anchor again returns the existing entry's receipt.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson

from stave.anchor.base import CONFIRMED, Anchor, Ledger, Receipt, now_ms
from stave.anchor.urls import query_params
from stave.errors import ConfigError, LedgerError, ProofError

__all__ = ["WITNESS_NOTE", "WitnessEntry", "WitnessLedger", "read_entries", "verify_file"]

WITNESS_NOTE: Final = (
    "local witness file, NOT a blockchain: a hash-chained append-only file on one machine; "
    "it shows partial tampering but anyone who can write the file can rewrite it whole"
)
_GENESIS: Final = "0" * 64
_KEYS: Final = frozenset({"v", "seq", "prev", "time", "payload", "hash"})


@dataclass(frozen=True, slots=True)
class WitnessEntry:
    seq: int
    prev: str
    time: int
    payload: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {"v": 1, "seq": self.seq, "prev": self.prev, "time": self.time, "payload": self.payload}

    def line(self) -> bytes:
        return _canonical({**self.body(), "hash": self.hash}) + b"\n"

    @classmethod
    def make(cls, seq: int, prev: str, time: int, payload: str) -> WitnessEntry:
        body = {"v": 1, "seq": seq, "prev": prev, "time": time, "payload": payload}
        return cls(seq, prev, time, payload, hashlib.sha256(_canonical(body)).hexdigest())


def _canonical(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def read_entries(path: Path, data: bytes, upto: int | None = None) -> list[WitnessEntry]:
    """Parse and check the chain in ``data`` (the file's bytes), lines 1..``upto`` (default all).

    Raises ProofError naming the first bad line. A last line without its newline (an append
    interrupted before it was acknowledged) is reported as incomplete.
    """
    entries: list[WitnessEntry] = []
    prev = _GENESIS
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, raw in enumerate(complete, start=1):
        if upto is not None and number > upto:
            return entries
        entry = _parse_line(path, number, raw, prev)
        entries.append(entry)
        prev = entry.hash
    if tail and (upto is None or len(complete) < upto):
        raise ProofError(
            f"witness file {path} line {len(complete) + 1}: incomplete line (no newline): an interrupted append"
        )
    return entries


def _parse_line(path: Path, number: int, raw: bytes, prev: str) -> WitnessEntry:
    where = f"witness file {path} line {number}"
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProofError(f"{where}: not valid JSON (the line was altered or damaged)") from None
    if not isinstance(value, dict) or set(value) != _KEYS:
        raise ProofError(f"{where}: expected an object with the keys {sorted(_KEYS)}")
    seq, prev_field, time, payload, digest = (value[k] for k in ("seq", "prev", "time", "payload", "hash"))
    if value["v"] != 1 or type(seq) is not int or type(time) is not int:
        raise ProofError(f"{where}: bad version or field types")
    if not all(isinstance(x, str) for x in (prev_field, payload, digest)):
        raise ProofError(f"{where}: bad field types")
    entry = WitnessEntry(seq, prev_field, time, payload, digest)
    if entry.line() != raw + b"\n":
        raise ProofError(f"{where}: not in canonical form (the line was altered)")
    if entry.seq != number:
        raise ProofError(f"{where}: sequence number {entry.seq}, expected {number} (lines removed or reordered)")
    if WitnessEntry.make(seq, prev_field, time, payload).hash != digest:
        raise ProofError(f"{where}: the entry's hash does not match its content (the line was altered)")
    if entry.prev != prev:
        raise ProofError(
            f"{where}: the chain is broken: prev is {entry.prev[:16]}…, the previous entry's hash is {prev[:16]}…"
        )
    try:
        Anchor.from_payload(payload.encode("ascii"))
    except (UnicodeEncodeError, ProofError) as exc:
        raise ProofError(f"{where}: {exc}") from None
    return entry


def verify_file(path: str | Path) -> int:
    """Walk the whole chain of a witness file; return the number of entries or raise ProofError
    naming the first bad line."""
    path = Path(path)
    with _locked(path, fcntl.LOCK_SH, create=False) as fd:
        return len(read_entries(path, _read_all(fd)))


class _locked:
    """An open descriptor of the witness file holding an flock (shared or exclusive)."""

    def __init__(self, path: Path, mode: int, *, create: bool) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT if create else os.O_RDONLY
        self.fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, mode)
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    chunks: list[bytes] = []
    offset = 0
    while offset < size:
        chunk = os.pread(fd, size - offset, offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class WitnessLedger(Ledger):
    """Anchors in a local, hash-chained witness file. Not a blockchain: see the module docstring."""

    kind = "witness"
    note = WITNESS_NOTE

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path).absolute()
        super().__init__(f"witness://{self.path}")
        self.fsync = fsync  # off only for benchmarks of the code around it, never in service

    @classmethod
    def from_url(cls, url: str) -> WitnessLedger:
        """``witness:///absolute/path/witness.log``."""
        parts = urlsplit(url)
        if parts.scheme != "witness" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(f"ledger URL {url!r}: expected witness:///absolute/path")
        query_params(url, {})
        return cls(unquote(parts.path))

    def _anchor(self, anchor: Anchor) -> Receipt:
        payload = anchor.payload().decode("ascii")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path, fcntl.LOCK_EX, create=True) as fd:
            data = _read_all(fd)
            if data and not data.endswith(b"\n"):
                # An append that died mid-write: it was never fsynced nor acknowledged (a receipt
                # is returned only after fsync), so no receipt can refer to it. Drop it.
                data = data[: data.rfind(b"\n") + 1]
                os.ftruncate(fd, len(data))
            try:
                entries = read_entries(self.path, data)
            except ProofError as exc:
                raise LedgerError(f"{self.url}: refusing to append to a damaged witness file: {exc}") from None
            for entry in entries:
                if entry.payload == payload:  # a retry: the existing entry is the receipt
                    return self._receipt_for(anchor, entry)
            prev = entries[-1].hash if entries else _GENESIS
            entry = WitnessEntry.make(len(entries) + 1, prev, now_ms(), payload)
            self._append(fd, entry.line())
        return self._receipt_for(anchor, entry)

    def _append(self, fd: int, line: bytes) -> None:
        written = os.write(fd, line)
        if written != len(line):  # a full disk: leave no partial line behind for the next reader
            os.ftruncate(fd, os.fstat(fd).st_size - written)
            raise LedgerError(f"{self.url}: short write ({written} of {len(line)} bytes): disk full?")
        if self.fsync:
            os.fsync(fd)
            # The directory too: it holds the file's name, new on the first append.
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def _receipt_for(self, anchor: Anchor, entry: WitnessEntry) -> Receipt:
        reference = {
            "path": str(self.path),
            "line": entry.seq,
            "entry_hash": entry.hash,
            "prev": entry.prev,
            "time": entry.time,
            "confirmations": 1,  # nothing more will ever confirm a local file
        }
        return Receipt(
            self.url, self.kind, CONFIRMED, anchor, reference, entry.time, confirmed_at=entry.time, note=self.note
        )

    def _refresh(self, receipt: Receipt) -> Receipt:
        return receipt  # confirmed from the start; verify() is what re-reads the file

    def _verify(self, receipt: Receipt, anchor: Anchor) -> None:
        line = receipt.reference.get("line")
        if type(line) is not int or line < 1:
            raise ProofError(f"{self.url}: the receipt has no valid line number (got {line!r:.40})")
        try:
            with _locked(self.path, fcntl.LOCK_SH, create=False) as fd:
                entries = read_entries(self.path, _read_all(fd), upto=line)
        except FileNotFoundError:
            raise ProofError(f"{self.url}: the witness file does not exist") from None
        if len(entries) < line:
            raise ProofError(f"witness file {self.path} has {len(entries)} entries; the receipt names line {line}")
        entry = entries[line - 1]
        where = f"witness file {self.path} line {line}"
        if entry.payload != anchor.payload().decode("ascii"):
            raise ProofError(f"{where} records another anchor: {entry.payload:.200}")
        for name, actual in (("entry_hash", entry.hash), ("prev", entry.prev), ("time", entry.time)):
            if receipt.reference.get(name) != actual:
                raise ProofError(
                    f"{where}: the receipt's {name} {receipt.reference.get(name)!r:.80} is not the file's {actual!r}"
                )

    def _health(self) -> str:
        target = self.path
        while not target.exists():  # the nearest existing ancestor: anchor() creates the rest
            target = target.parent
        if not os.access(target, os.W_OK):
            raise LedgerError(f"{target} is not writable")
        count = verify_file(self.path) if self.path.exists() else 0
        return f"{WITNESS_NOTE}; {count} entries, chain intact"
