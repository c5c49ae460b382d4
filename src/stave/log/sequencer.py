"""The log in SQL: sequencing, the Merkle tree's stored nodes, signed checkpoints, proofs, tiles.

**Sequencing is one writer.** :meth:`Log.append` runs in one write transaction that holds the
sequencer lock: SQLite's writer lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock. Any
number of API processes may append concurrently; they queue on the lock, each batch gets the
next sequence numbers, and an event already in the log keeps the number it got first. A
sequence number is the event's leaf index in the tree (``log_index`` in proofs).

**The tree** is RFC 9162's over leaves ``SHA-256(0x00 ‖ event id bytes)``. Only perfect
subtrees are stored (:mod:`stave.log.merkle`); an append adds O(1) amortised nodes and reads
the O(log n) frontier (cached in memory while this process is the last writer); roots and
proofs read O(log n) stored hashes in one query. Nothing ever rebuilds the tree, except
:meth:`Log.verify`, which exists to check the stored nodes against the stored ids.

**Checkpoints** are C2SP signed notes (``<origin>\\n<size>\\n<base64 root>\\n`` + an Ed25519
signature line), kept verbatim: a checkpoint is signed once and served as signed.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection, bindparam, select

from stave.db import Database, driver_sql, in_list
from stave.db.schema import log_checkpoints, log_entries, log_nodes, log_state
from stave.errors import ProofError, StaveError
from stave.event import Event
from stave.log import merkle, tiles
from stave.log.note import Checkpoint, Signer, Verifier, open_checkpoint, sign_note

__all__ = ["Log", "LogEntry", "LogReport", "Sequenced", "SignedCheckpoint", "event_leaf"]

SEQUENCER_LOCK: Final = 0x5747_0002  # the PostgreSQL advisory lock every appender queues on
_NODES = select(log_nodes.c.node, log_nodes.c.hash).where(log_nodes.c.node.in_(bindparam("keys", expanding=True)))
_STATE = select(log_state.c.size, log_state.c.root).where(log_state.c.id == 1)
_ENTRY_COLUMNS = (
    log_entries.c.seq,
    log_entries.c.event_id,
    log_entries.c.event_type,
    log_entries.c.author,
    log_entries.c.created_at,
    log_entries.c.sequenced_at,
)


# The append's statements, in the driver's own SQL ("?" placeholders, "%s" for psycopg).
_INSERT_ENTRIES: Final = (
    "INSERT INTO log_entries (seq, event_id, event_type, author, created_at, sequenced_at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_NODES: Final = "INSERT INTO log_nodes (node, hash) VALUES (?, ?)"
_KNOWN_IDS: Final = "SELECT event_id, seq FROM log_entries WHERE event_id IN "
_NODES_BY_KEY: Final = "SELECT node, hash FROM log_nodes WHERE node IN "
_UPSERT_STATE: Final = (
    "INSERT INTO log_state (id, size, root, updated_at) VALUES (1, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root, updated_at = excluded.updated_at"
)


def event_leaf(event_id: str) -> bytes:
    """The leaf hash of an event: SHA-256(0x00 ‖ the 32 bytes of its id)."""
    return merkle.leaf_hash(bytes.fromhex(event_id))


@dataclass(frozen=True, slots=True)
class Sequenced:
    seq: int
    event_id: str
    new: bool


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    event_id: str
    event_type: str | None
    author: str | None
    created_at: int | None
    sequenced_at: int


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    size: int
    root: bytes
    note: str
    created_at: int  # Unix milliseconds

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root).decode()


@dataclass
class LogReport:
    size: int = 0
    root_matches_state: bool = True
    bad_nodes: list[tuple[int, int]] = field(default_factory=list)
    missing_nodes: list[tuple[int, int]] = field(default_factory=list)
    bad_checkpoints: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.root_matches_state and not self.bad_nodes and not self.missing_nodes and not self.bad_checkpoints


_LEVEL_SHIFT: Final = 48


def _node_key(node: merkle.NodeId) -> int:
    """One integer per node (see the ``log_nodes`` table), so a batch of nodes is one IN query."""
    return (node[0] << _LEVEL_SHIFT) | node[1]


def _node_id(key: int) -> merkle.NodeId:
    return key >> _LEVEL_SHIFT, key & ((1 << _LEVEL_SHIFT) - 1)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Log:
    """The append-only log of event ids, its tree, checkpoints and proofs."""

    def __init__(self, database: Database, signer: Signer) -> None:
        self.database = database
        self.signer = signer
        self.origin = signer.name  # C2SP: the checkpoint's origin line names the log and its key
        self.verifier: Verifier = signer.verifier()
        self.node_reads = 0  # stored hashes read, for the benchmark's read counts
        self._frontier: tuple[int, list[bytes]] | None = None  # (size, hashes) as last written here
        self._lock = threading.Lock()

    # --- sequencing ---------------------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Sequenced]:
        """Sequence events (in order); ones already in the log keep their original number."""
        return self.append_ids([(event.id, event.type.name, event.author, event.created_at) for event in events])

    def append_ids(self, items: Sequence[tuple[str, str | None, str | None, int | None]]) -> list[Sequenced]:
        """Sequence ``(event id, type, author, created_at)`` items; the low-level form of :meth:`append`."""
        if not items:
            return []
        with self._lock, self.database.write(lock=SEQUENCER_LOCK) as connection:
            # Plain SQL through the driver: this transaction is the sequencer's whole critical
            # section, and SQLAlchemy's statement machinery cost more than the statements here.
            ids = [item[0] for item in items]
            unique = list(dict.fromkeys(ids))
            known: dict[str, int] = {}
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                sql = driver_sql(connection, _KNOWN_IDS + in_list(len(chunk)))
                known.update((event_id, int(seq)) for event_id, seq in connection.exec_driver_sql(sql, tuple(chunk)))
            size, _ = self._state(connection)
            fresh: list[tuple[str, str | None, str | None, int | None]] = []
            for item in items:
                if item[0] not in known:
                    known[item[0]] = size + len(fresh)
                    fresh.append(item)
            results = [Sequenced(known[event_id], event_id, known[event_id] >= size) for event_id in ids]
            if not fresh:
                return results
            frontier = self._read_frontier(connection, size)
            leaves = [event_leaf(event_id) for event_id, *_ in fresh]
            new_frontier, new_size, nodes = merkle.append(frontier, size, leaves)
            now = _now_ms()
            connection.exec_driver_sql(
                driver_sql(connection, _INSERT_ENTRIES),
                [
                    (size + offset, event_id, event_type, author, created_at, now)
                    for offset, (event_id, event_type, author, created_at) in enumerate(fresh)
                ],
            )
            connection.exec_driver_sql(
                driver_sql(connection, _INSERT_NODES),
                [(_node_key((level, index)), digest) for level, index, digest in nodes],
            )
            root = merkle.root_from_frontier(new_frontier)
            connection.exec_driver_sql(driver_sql(connection, _UPSERT_STATE), (new_size, root, now))
        self._frontier = (new_size, new_frontier)
        return results

    def _state(self, connection: Connection) -> tuple[int, bytes]:
        row = connection.execute(_STATE).first()
        return (0, merkle.EMPTY_ROOT) if row is None else (int(row[0]), bytes(row[1]))

    def _read_frontier(self, connection: Connection, size: int) -> list[bytes]:
        cached = self._frontier
        if cached is not None and cached[0] == size:
            return list(cached[1])
        ids = merkle.frontier_ids(size)
        hashes = self._read_nodes(connection, ids)
        return [hashes[node] for node in ids]

    def _read_nodes(self, connection: Connection, ids: Iterable[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        # Plain SQL with one placeholder per node: proofs are the hot read path, and SQLAlchemy's
        # expanding IN costs several times the query itself here (measured at 1M entries).
        sql = driver_sql(connection, _NODES_BY_KEY + in_list(len(wanted)))
        rows = connection.exec_driver_sql(sql, tuple(_node_key(node) for node in wanted)).all()
        found = {_node_id(int(key)): bytes(digest) for key, digest in rows}
        self.node_reads += len(found)
        missing = [node for node in wanted if node not in found]
        if missing:
            raise ProofError(f"the log's database lacks stored tree nodes {missing[:5]}: run `stave log verify`")
        return found

    # --- reading ------------------------------------------------------------------------------

    def size(self) -> int:
        with self.database.engine.connect() as connection:
            return self._state(connection)[0]

    def root(self) -> bytes:
        with self.database.engine.connect() as connection:
            return self._state(connection)[1]

    def lookup(self, event_id: str) -> int | None:
        return self.lookup_many([event_id]).get(event_id)

    def lookup_many(self, event_ids: Sequence[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(log_entries.c.event_id, log_entries.c.seq).where(
                    log_entries.c.event_id.in_(bindparam("ids", expanding=True))
                ),
                {"ids": list(event_ids)},
            )
            return {event_id: int(seq) for event_id, seq in rows}

    def entries(
        self, *, after_seq: int = -1, limit: int = 100, event_type: str | None = None, author: str | None = None
    ) -> list[LogEntry]:
        """Entries in log order after ``after_seq``: cursor paging for readers and followers."""
        query = select(*_ENTRY_COLUMNS).where(log_entries.c.seq > after_seq).order_by(log_entries.c.seq).limit(limit)
        if event_type is not None:
            query = query.where(log_entries.c.event_type == event_type)
        if author is not None:
            query = query.where(log_entries.c.author == author)
        with self.database.engine.connect() as connection:
            return [LogEntry(*row) for row in connection.execute(query)]

    def entry_ids(self, start: int, end: int) -> list[str]:
        """Event ids at sequence numbers ``[start, end)``."""
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(log_entries.c.seq, log_entries.c.event_id)
                .where(log_entries.c.seq >= start, log_entries.c.seq < end)
                .order_by(log_entries.c.seq)
            )
            ids = [event_id for _, event_id in rows]
        if len(ids) != end - start:
            raise ProofError(f"the log holds {len(ids)} entries in [{start}, {end}), expected {end - start}")
        return ids

    # --- checkpoints --------------------------------------------------------------------------

    def publish_checkpoint(self) -> SignedCheckpoint:
        """Sign and keep a checkpoint of the current tree, unless the latest one already covers it."""
        with self._lock, self.database.write(lock=SEQUENCER_LOCK) as connection:
            size, root = self._state(connection)
            latest = self._latest_checkpoint(connection)
            if latest is not None and latest.size >= size:
                return latest
            note = sign_note(Checkpoint(self.origin, size, root).to_body(), [self.signer])
            checkpoint = SignedCheckpoint(size, root, note, _now_ms())
            connection.execute(
                log_checkpoints.insert(),
                {"size": size, "root": root, "note": note, "created_at": checkpoint.created_at},
            )
            return checkpoint

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        with self.database.engine.connect() as connection:
            return self._latest_checkpoint(connection)

    def _latest_checkpoint(self, connection: Connection) -> SignedCheckpoint | None:
        row = connection.execute(
            select(log_checkpoints.c.size, log_checkpoints.c.root, log_checkpoints.c.note, log_checkpoints.c.created_at)
            .order_by(log_checkpoints.c.size.desc())
            .limit(1)
        ).first()
        return None if row is None else SignedCheckpoint(int(row[0]), bytes(row[1]), row[2], int(row[3]))

    def checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        with self.database.engine.connect() as connection:
            row = connection.execute(
                select(log_checkpoints.c.root, log_checkpoints.c.note, log_checkpoints.c.created_at).where(
                    log_checkpoints.c.size == size
                )
            ).first()
        return None if row is None else SignedCheckpoint(size, bytes(row[0]), row[1], int(row[2]))

    def checkpoints(self) -> list[SignedCheckpoint]:
        with self.database.engine.connect() as connection:
            rows = connection.execute(
                select(
                    log_checkpoints.c.size, log_checkpoints.c.root, log_checkpoints.c.note, log_checkpoints.c.created_at
                ).order_by(log_checkpoints.c.size)
            )
            return [SignedCheckpoint(int(size), bytes(root), note, int(at)) for size, root, note, at in rows]

    def vkey(self) -> str:
        """The note verifier key, ``<name>+<hash>+<base64 key>``, for any signed-note verifier."""
        return self.verifier.verifier_key()

    # --- proofs -------------------------------------------------------------------------------

    def root_at(self, size: int) -> bytes:
        return self._prove(size, merkle.root_plan(size) if size >= 0 else None)[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        if not 0 <= index < size:
            raise ProofError(f"leaf {index} is not in a tree of size {size}")
        return self._prove(size, merkle.inclusion_plan(index, size))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof that the tree of ``old_size`` is a prefix of ``new_size``'s."""
        if not 0 <= old_size <= new_size:
            raise ProofError(f"a consistency proof needs 0 <= old size <= new size, got {old_size} and {new_size}")
        return self._prove(new_size, merkle.consistency_plan(old_size, new_size))

    def _prove(self, size: int, plan: merkle.Plan | None) -> list[bytes]:
        """Check the size and read the plan's nodes on one connection: one consistent snapshot."""
        with self.database.engine.connect() as connection:
            current = self._state(connection)[0]
            if plan is None or not 0 <= size <= current:
                raise ProofError(f"tree size {size} is beyond the log's size {current}")
            return plan.assemble(self._read_nodes(connection, plan.node_ids))

    # --- tiles (C2SP tlog-tiles) --------------------------------------------------------------

    def tile(self, level: int, index: int, width: int | None) -> bytes:
        """The hashes of one tile, concatenated; only tiles the current tree has complete."""
        size = self.size()
        full = tiles.full_tile_count(size, level)
        # A full tile, a partial tile at the edge, or a partial view of a full one (the spec allows it).
        serves = index < full or (
            index == full and width is not None and width <= tiles.partial_tile_width(size, level)
        )
        if not serves:
            raise ProofError(f"tile {level}/{index} width {width} is not in a tree of size {size}")
        ids = tiles.tile_node_ids(level, index, width)
        with self.database.engine.connect() as connection:
            hashes = self._read_nodes(connection, ids)
        return b"".join(hashes[node] for node in ids)

    def entry_bundle(self, index: int, width: int | None) -> bytes:
        size = self.size()
        start = index * tiles.TILE_WIDTH
        end = start + (width or tiles.TILE_WIDTH)
        if end > size:
            raise ProofError(f"entry bundle {index} width {width} is not in a tree of size {size}")
        return tiles.encode_entry_bundle([bytes.fromhex(event_id) for event_id in self.entry_ids(start, end)])

    # --- verification -------------------------------------------------------------------------

    def verify(self, *, batch: int = 10_000, progress: Callable[[int, int], None] | None = None) -> LogReport:
        """Recompute the whole tree from the stored ids; compare every stored node and checkpoint."""
        with self.database.engine.connect() as connection:
            size, stored_root = self._state(connection)
        report = LogReport(size=size)
        frontier: list[bytes] = []
        done = 0
        while done < size:
            end = min(size, done + batch)
            leaves = [event_leaf(event_id) for event_id in self.entry_ids(done, end)]
            frontier, done, nodes = merkle.append(frontier, done, leaves)
            with self.database.engine.connect() as connection:
                rows = connection.execute(
                    _NODES, {"keys": [_node_key((level, index)) for level, index, _ in nodes]}
                ).all()
            stored = {_node_id(int(key)): bytes(digest) for key, digest in rows}
            for level, index, digest in nodes:
                found = stored.get((level, index))
                if found is None:
                    report.missing_nodes.append((level, index))
                elif found != digest:
                    report.bad_nodes.append((level, index))
            if progress:
                progress(done, size)
        root = merkle.root_from_frontier(frontier)
        report.root_matches_state = root == stored_root
        for checkpoint in self.checkpoints():
            problem = self._checkpoint_problem(checkpoint, frontier_root=root if checkpoint.size == size else None)
            if problem:
                report.bad_checkpoints.append((checkpoint.size, problem))
        return report

    def _checkpoint_problem(self, checkpoint: SignedCheckpoint, frontier_root: bytes | None) -> str | None:
        try:
            opened = open_checkpoint(checkpoint.note, [self.verifier], self.origin)
        except StaveError as exc:
            return f"signature or format: {exc}"
        if opened.size != checkpoint.size or opened.root_hash != checkpoint.root:
            return "the signed note does not match its stored size and root"
        expected = frontier_root if frontier_root is not None else self._recomputed_root(checkpoint.size)
        if expected != checkpoint.root:
            return "its root differs from the tree recomputed from the stored ids"
        return None

    def _recomputed_root(self, size: int) -> bytes:
        leaves = [event_leaf(event_id) for event_id in self.entry_ids(0, size)]
        return merkle.root_from_frontier(merkle.append([], 0, leaves)[0])
