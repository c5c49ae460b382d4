"""One batch transaction of the projection: buffered rows, refusals, and what an entry is.

Content events add rows to the buffer, which :meth:`Batch.flush` writes with one multi-row
statement per table; a node takes the first statement of it in log order (a later event naming
the same id refers to it and does not rename it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, bindparam, select

from stave.db import Database
from stave.event import canonicalize
from stave.graph import tables
from stave.graph.extract import Extract, MembershipRow, NodeRow
from stave.graph.names import fold
from stave.graph.rules import Rules

__all__ = ["Applied", "Batch", "canonical_json", "name_rows_of"]

_CHUNK: Final = 500  # ids per IN (...) query


def canonical_json(value: Any) -> str:
    return canonicalize(value).decode()


@dataclass(frozen=True, slots=True)
class Applied:
    """An entry being applied: what every handler needs to know about it."""

    seq: int
    event_id: str
    type: str
    author: str
    created_at: int
    log_time: int
    parents: list[str]
    body: Mapping[str, Any]


@dataclass
class Batch:
    """The state of one batch transaction: the connection, buffered rows and refusals."""

    connection: Connection
    database: Database
    rules: Rules
    nodes: dict[str, tuple[NodeRow, str]] = field(default_factory=dict)  # first statement of each node in the batch
    edges: list[dict[str, Any]] = field(default_factory=list)
    memberships: list[dict[str, Any]] = field(default_factory=list)
    touches: dict[tuple[str, int, str], tuple[str, str]] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    _rejection_count: dict[int, int] = field(default_factory=dict)
    _edge_count: dict[int, int] = field(default_factory=dict)

    def reject(self, entry: Applied, rule: str, detail: str) -> None:
        n = self._rejection_count.get(entry.seq, 0)
        self._rejection_count[entry.seq] = n + 1
        self.rejections.append({"seq": entry.seq, "n": n, "event_id": entry.event_id, "rule": rule, "detail": detail})

    def touch(self, node_id: str, entry: Applied, how: str) -> None:
        self.touches.setdefault((node_id, entry.seq, how), (entry.event_id, entry.type))

    def add(self, extract: Extract, entry: Applied) -> None:
        for node in extract.nodes:
            self.nodes.setdefault(node.id, (node, entry.event_id))
        for edge in extract.edges:
            pos = self._edge_count.get(entry.seq, 0)
            self._edge_count[entry.seq] = pos + 1
            self.edges.append(
                {
                    "edge_id": edge.edge_id,
                    "src": edge.src,
                    "rel": edge.rel,
                    "dst": edge.dst,
                    "role_id": edge.role_id,
                    "group_id": edge.group_id,
                    "side": edge.side,
                    "number": edge.number,
                    "event_id": entry.event_id,
                    "seq": entry.seq,
                    "pos": pos,
                }
            )
        for membership in extract.memberships:
            self.memberships.append(_membership_row(membership, entry))
        for node_id, how in extract.touches:
            self.touch(node_id, entry, how)

    def flush(self) -> None:
        """Write the buffered rows: nodes not yet in the database (first statement wins), then the rest."""
        connection = self.connection
        if self.nodes:
            existing = self.existing_nodes(list(self.nodes))
            fresh = [(node, event_id) for node_id, (node, event_id) in self.nodes.items() if node_id not in existing]
            if fresh:
                connection.execute(
                    tables.nodes.insert(),
                    [
                        {
                            "id": node.id,
                            "kind": node.kind,
                            "name": node.name,
                            "attrs": canonical_json(dict(node.attrs)),
                            "created_by": event_id,
                        }
                        for node, event_id in fresh
                    ],
                )
                name_rows = [row for node, _ in fresh for row in name_rows_of(node.id, node.name, node.altnames)]
                if name_rows:
                    connection.execute(tables.names.insert(), name_rows)
        if self.edges:
            connection.execute(tables.edges.insert(), self.edges)
        if self.memberships:
            connection.execute(tables.memberships.insert(), self.memberships)
        if self.touches:
            rows = [
                {"node_id": node_id, "seq": seq, "how": how, "event_id": event_id, "event_type": event_type}
                for (node_id, seq, how), (event_id, event_type) in self.touches.items()
            ]
            connection.execute(self.database.insert(tables.touches).on_conflict_do_nothing(), rows)
        if self.rejections:
            connection.execute(tables.rejections.insert(), self.rejections)
        self.nodes.clear()
        self.edges.clear()
        self.memberships.clear()
        self.touches.clear()
        self.rejections.clear()

    def existing_nodes(self, ids: Sequence[str]) -> dict[str, str]:
        """Kind of each of ``ids`` already in the database."""
        found: dict[str, str] = {}
        query = select(tables.nodes.c.id, tables.nodes.c.kind).where(
            tables.nodes.c.id.in_(bindparam("ids", expanding=True))
        )
        for start in range(0, len(ids), _CHUNK):
            for node_id, kind in self.connection.execute(query, {"ids": list(ids[start : start + _CHUNK])}):
                found[node_id] = kind
        return found


def name_rows_of(node_id: str, name: str | None, altnames: Iterable[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for text, primary in [(name, 1)] + [(alt, 0) for alt in altnames]:
        if text and text not in seen:
            seen.add(text)
            rows.append({"node_id": node_id, "name": text, "folded": fold(text), "is_primary": primary})
    return rows


def _membership_row(membership: MembershipRow, entry: Applied) -> dict[str, Any]:
    return {
        "membership_id": membership.membership_id,
        "group_id": membership.group_id,
        "person_id": membership.person_id,
        "roles": canonical_json(list(membership.roles)),
        "since": membership.since,
        "until": membership.until,
        "event_id": entry.event_id,
        "ended_by": None,
        "seq": entry.seq,
    }
