"""The graph projection: a follower of the log (after Tessera's ``Follower``).

It reads the log in order (:meth:`stave.log.sequencer.Log.entries`) and each event's bytes from
the replicated store, and applies every batch in **one transaction that also advances its
cursor** (``graph_cursor``): a crash mid-batch leaves nothing half applied, and a restart
continues after the last committed entry without applying anything twice. Two processes
following the same log into the same database serialise on the write transaction and each
re-reads the cursor inside it, so neither applies an entry the other already did.

**Log time** is the running maximum of ``created_at`` over the log up to an entry; it is kept
in the cursor and is the only clock governance sees. Nothing here reads the wall clock except
the cursor's ``updated_at``, which is for operators and is not part of the digest.

A batch buffers the rows content events state and writes them with one multi-row statement per
table; governance events (:mod:`stave.graph.governance`) write directly, reading nodes from the
buffer and the database, and a FINALIZE writes the buffer out first, so every event sees the
state every earlier event left, whatever the batch split (the property tests check this).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol

import orjson
from sqlalchemy import Connection, delete, select, update

from stave.db import Database, open_database
from stave.errors import BackendUnavailable, StaveError, StorageError
from stave.graph import governance, tables
from stave.graph.batch import Applied, Batch
from stave.graph.extract import (
    Extract,
    MembershipRow,
    extract_add_member,
    extract_create_group,
    extract_release_bundle,
)
from stave.graph.ids import edge_id
from stave.graph.rules import Rules
from stave.log.sequencer import LogEntry

__all__ = ["FOLLOW_ROUND", "GRAPH", "MIGRATIONS", "EventSource", "LogSource", "Projector", "open_graph_database"]

GRAPH: Final = "graph"  # the projection's name (its cursor row)
MIGRATIONS: Final = "stave.graph:migrations"
_CHUNK: Final = 500  # ids per IN (...) query
FOLLOW_ROUND: Final = 5000  # entries at most per round of a long-running follower (then it commits and looks again)


class LogSource(Protocol):
    def entries(self, *, after_seq: int = -1, limit: int = 100) -> list[LogEntry]: ...

    def size(self) -> int: ...


class EventSource(Protocol):
    def get_events(self, event_ids: Sequence[str]) -> Mapping[str, bytes | StorageError]: ...


def open_graph_database(url: str) -> Database:
    """The graph's database (SQLite or PostgreSQL), its migrations applied."""
    return open_database(url, migrations=MIGRATIONS)


_EXTRACTORS: Final[dict[str, Callable[[str, Mapping[str, Any]], Extract]]] = {
    "CREATE_RELEASE_BUNDLE": extract_release_bundle,
    "CREATE_GROUP": extract_create_group,
    "ADD_MEMBER": extract_add_member,
}


def _remove_member(batch: Batch, entry: Applied) -> None:
    """Close the open memberships of the person in the group (one with no start if none is open)."""
    group_id, person_id = entry.body.get("group_id"), entry.body.get("person_id")
    if not isinstance(group_id, str) or not isinstance(person_id, str):
        batch.reject(entry, "malformed", "REMOVE_MEMBER needs group_id and person_id")
        return
    left = entry.body.get("left_date") if isinstance(entry.body.get("left_date"), str) else None
    m = tables.memberships.c
    closed = batch.close_memberships(group_id, person_id, left, entry.event_id)  # still in the buffer
    closed += batch.connection.execute(
        update(tables.memberships)
        .where(m.group_id == group_id, m.person_id == person_id, m.until.is_(None), m.ended_by.is_(None))
        .values(until=left, ended_by=entry.event_id)
    ).rowcount
    out = Extract(entry.event_id)
    out.node("group", group_id, "$.body.group_id", None)
    out.node("person", person_id, "$.body.person_id", None)
    out.touch(group_id, "group")
    out.touch(person_id, "member_left")
    if not closed:  # no open membership: the person is known only to have left
        out.memberships.append(
            MembershipRow(edge_id(entry.event_id, "$.body", "membership"), group_id, person_id, (), None, left, True)
        )
    batch.add(out, entry)


class Projector:
    """Follows the log into the graph's database. Thread-safe: one batch at a time per instance."""

    name = GRAPH

    def __init__(
        self,
        database: Database,
        log: LogSource,
        events: EventSource,
        rules: Rules | None = None,
        *,
        batch_size: int = 1000,
    ) -> None:
        self.database = database
        self.log = log
        self.events = events
        self.rules = rules or Rules()
        self.batch_size = batch_size
        self._lock = threading.Lock()

    # --- the cursor ---------------------------------------------------------------------------

    def position(self) -> tuple[int, int]:
        """(last applied sequence number, log time there); (-1, 0) before the first entry."""
        with self.database.engine.connect() as connection:
            return self._position(connection)

    def _position(self, connection: Connection, *, for_update: bool = False) -> tuple[int, int]:
        query = select(tables.cursor.c.seq, tables.cursor.c.log_time).where(tables.cursor.c.name == self.name)
        if for_update and self.database.dialect == "postgresql":
            query = query.with_for_update()
        row = connection.execute(query).first()
        return (int(row[0]), int(row[1])) if row else (-1, 0)

    # --- following ----------------------------------------------------------------------------

    def catch_up(self, *, progress: Callable[[int, int], None] | None = None, max_entries: int | None = None) -> int:
        """Apply every entry the log holds beyond the cursor; return how many were applied."""
        applied = 0
        with self._lock:
            total = self.log.size() if progress is not None else 0
            while max_entries is None or applied < max_entries:
                seq, _ = self.position()
                limit = self.batch_size if max_entries is None else min(self.batch_size, max_entries - applied)
                entries = self.log.entries(after_seq=seq, limit=limit)
                if not entries:
                    break
                applied += self.apply(entries)
                if progress is not None:
                    progress(entries[-1].seq + 1, max(total, entries[-1].seq + 1))
        return applied

    def apply(self, entries: Sequence[LogEntry]) -> int:
        """Apply consecutive log entries in one transaction with the cursor; skip ones already applied."""
        bodies = self._read(entries)
        # durable=False (SQLite): no fsync per batch. A power cut may lose the last batches, cursor
        # included (they commit together), and the next catch-up applies them again from the log.
        with self.database.write(durable=False) as connection:
            seq, log_time = self._position(connection, for_update=True)
            todo = [entry for entry in entries if entry.seq > seq]
            if not todo:
                return 0
            if todo[0].seq != seq + 1:
                raise StaveError(f"graph cursor is at {seq} but the next entry given is {todo[0].seq}: entries skipped")
            batch = Batch(connection, self.database, self.rules)
            for entry in todo:
                value = bodies[entry.event_id]
                body = value.get("body")
                created_at = value.get("created_at")
                log_time = max(log_time, created_at if isinstance(created_at, int) else 0)
                applied = Applied(
                    entry.seq,
                    entry.event_id,
                    str(value.get("type")),
                    str(value.get("author_pubkey")),
                    created_at if isinstance(created_at, int) else 0,
                    log_time,
                    [p for p in value.get("parents") or [] if isinstance(p, str)],
                    body if isinstance(body, dict) else {},
                )
                extractor = _EXTRACTORS.get(applied.type)
                if extractor is not None:
                    batch.add(extractor(applied.event_id, applied.body), applied)
                elif applied.type == "REMOVE_MEMBER":
                    _remove_member(batch, applied)
                else:
                    governance.apply(batch, applied)
            batch.flush()
            last = todo[-1].seq
            values = {"seq": last, "log_time": log_time, "updated_at": time.time_ns() // 1_000_000}
            if seq < 0 and not self._has_cursor(connection):
                connection.execute(tables.cursor.insert().values(name=self.name, **values))
            else:
                connection.execute(update(tables.cursor).where(tables.cursor.c.name == self.name).values(**values))
            return len(todo)

    def _has_cursor(self, connection: Connection) -> bool:
        query = select(tables.cursor.c.name).where(tables.cursor.c.name == self.name)
        return connection.execute(query).first() is not None

    def _read(self, entries: Sequence[LogEntry]) -> dict[str, dict[str, Any]]:
        found = self.events.get_events([entry.event_id for entry in entries])
        bodies: dict[str, dict[str, Any]] = {}
        for entry in entries:
            data = found.get(entry.event_id)
            if not isinstance(data, bytes):
                # Skipping would make this replica's graph differ from everyone else's: stop and retry later.
                raise BackendUnavailable(f"graph: cannot read event {entry.event_id} (seq {entry.seq}): {data}")
            value = orjson.loads(data)
            bodies[entry.event_id] = value if isinstance(value, dict) else {}
        return bodies

    # --- rebuilding ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every table of the projection and reset its cursor, in one transaction."""
        with self._lock, self.database.write() as connection:
            for table in reversed(tables.metadata.sorted_tables):
                connection.execute(delete(table))
            if self.database.is_sqlite:
                connection.exec_driver_sql("INSERT INTO graph_names_fts(graph_names_fts) VALUES ('delete-all')")

    def rebuild(self, *, progress: Callable[[int, int], None] | None = None) -> int:
        """Reset, then replay the whole log; return the number of entries applied."""
        self.reset()
        return self.catch_up(progress=progress)
