"""One batch transaction of the projection: buffered rows, refusals, and what an entry is.

Content events add rows to the buffer, which :meth:`Batch.flush` writes with one multi-row
statement per table; a node takes the first statement of it in log order (a later event naming
the same id refers to it and does not rename it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Connection, Table, bindparam, select

from stave.db import Database
from stave.event import canonicalize
from stave.graph import tables
from stave.graph.extract import Extract, MembershipRow, NodeRow
from stave.graph.names import fold
from stave.graph.rules import Rules

__all__ = ["Applied", "Batch", "bulk_insert", "canonical_json", "name_rows_of", "name_tuples"]

_CHUNK: Final = 500  # ids per IN (...) query
_NAME_COLUMNS: Final = ("node_id", "name", "folded", "is_primary")
_EDGE_COLUMNS: Final = (
    "edge_id",
    "src",
    "rel",
    "dst",
    "role_id",
    "group_id",
    "side",
    "number",
    "event_id",
    "seq",
    "pos",
)
_MEMBERSHIP_COLUMNS: Final = (
    "membership_id",
    "group_id",
    "person_id",
    "roles",
    "since",
    "until",
    "event_id",
    "ended_by",
    "seq",
)


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
    statements: list[tuple[str, str, Applied]] = field(default_factory=list)  # (node id, kind, entry) in log order
    edges: list[tuple[Any, ...]] = field(default_factory=list)  # in _EDGE_COLUMNS order
    memberships: list[tuple[Any, ...]] = field(default_factory=list)  # in _MEMBERSHIP_COLUMNS order
    touches: dict[tuple[str, int, str], tuple[str, str]] = field(default_factory=dict)
    rejections: list[tuple[Any, ...]] = field(default_factory=list)
    _rejection_count: dict[int, int] = field(default_factory=dict)
    _edge_count: dict[int, int] = field(default_factory=dict)

    def reject(self, entry: Applied, rule: str, detail: str) -> None:
        n = self._rejection_count.get(entry.seq, 0)
        self._rejection_count[entry.seq] = n + 1
        self.rejections.append((entry.seq, n, entry.event_id, rule, detail))

    def touch(self, node_id: str, entry: Applied, how: str) -> None:
        self.touches.setdefault((node_id, entry.seq, how), (entry.event_id, entry.type))

    def add(self, extract: Extract, entry: Applied) -> None:
        for node in extract.nodes:
            self.nodes.setdefault(node.id, (node, entry.event_id))
            self.statements.append((node.id, node.kind, entry))
        for edge in extract.edges:
            pos = self._edge_count.get(entry.seq, 0)
            self._edge_count[entry.seq] = pos + 1
            self.edges.append(
                (
                    edge.edge_id,
                    edge.src,
                    edge.rel,
                    edge.dst,
                    edge.role_id,
                    edge.group_id,
                    edge.side,
                    edge.number,
                    entry.event_id,
                    entry.seq,
                    pos,
                )
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
            kinds = dict(existing)
            for node_id, kind, entry in self.statements:
                known = kinds.setdefault(node_id, kind)
                if known != kind:
                    self.reject(entry, "kind-conflict", f"node {node_id} is a {known}, not a {kind}: it keeps its kind")
            fresh = [(node, event_id) for node_id, (node, event_id) in self.nodes.items() if node_id not in existing]
            bulk_insert(
                connection,
                tables.nodes,
                ("id", "kind", "name", "attrs", "created_by"),
                [
                    (node.id, node.kind, node.name, canonical_json(dict(node.attrs)) if node.attrs else "{}", event_id)
                    for node, event_id in fresh
                ],
            )
            bulk_insert(
                connection,
                tables.names,
                _NAME_COLUMNS,
                [row for node, _ in fresh for row in name_tuples(node.id, node.name, node.altnames)],
            )
        bulk_insert(connection, tables.edges, _EDGE_COLUMNS, self.edges)
        bulk_insert(connection, tables.memberships, _MEMBERSHIP_COLUMNS, self.memberships)
        bulk_insert(
            connection,
            tables.touches,
            ("node_id", "seq", "how", "event_id", "event_type"),
            [(node_id, seq, how, event_id, kind) for (node_id, seq, how), (event_id, kind) in self.touches.items()],
            ignore_conflicts=True,
        )
        bulk_insert(connection, tables.rejections, ("seq", "n", "event_id", "rule", "detail"), self.rejections)
        self.nodes.clear()
        self.statements.clear()
        self.edges.clear()
        self.memberships.clear()
        self.touches.clear()
        self.rejections.clear()

    def close_memberships(self, group_id: str, person_id: str, until: str | None, ended_by: str) -> int:
        """End the open memberships of the person in the group that are still in the buffer; how many."""
        closed = 0
        for index, row in enumerate(self.memberships):
            if row[1] == group_id and row[2] == person_id and row[5] is None and row[7] is None:
                self.memberships[index] = (*row[:5], until, row[6], ended_by, row[8])
                closed += 1
        return closed

    def known_kinds(self, ids: Sequence[str]) -> dict[str, str]:
        """Kind of each of ``ids`` known so far: in the database, or stated earlier in this batch."""
        kinds = self.existing_nodes(ids)  # the database's kind wins: a node keeps its first kind
        for node_id in ids:
            if node_id not in kinds and node_id in self.nodes:
                kinds[node_id] = self.nodes[node_id][0].kind
        return kinds

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


def _membership_row(membership: MembershipRow, entry: Applied) -> tuple[Any, ...]:
    return (
        membership.membership_id,
        membership.group_id,
        membership.person_id,
        canonical_json(list(membership.roles)),
        membership.since,
        membership.until,
        entry.event_id,
        entry.event_id if membership.ended else None,
        entry.seq,
    )


def name_tuples(node_id: str, name: str | None, altnames: Iterable[str]) -> list[tuple[str, str, str, int]]:
    """(node id, name, folded, is primary) of a node's names, each once."""
    rows: list[tuple[str, str, str, int]] = []
    seen: set[str] = set()
    for text, primary in [(name, 1)] + [(alt, 0) for alt in altnames]:
        if text and text not in seen:
            seen.add(text)
            rows.append((node_id, text, fold(text), primary))
    return rows


def name_rows_of(node_id: str, name: str | None, altnames: Iterable[str]) -> list[dict[str, Any]]:
    return [dict(zip(_NAME_COLUMNS, row, strict=True)) for row in name_tuples(node_id, name, altnames)]


def bulk_insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """One multi-row INSERT through the driver's ``executemany``: the projection's hot path.

    Plain SQL on purpose: building and binding SQLAlchemy statements row by row cost more than
    the inserts themselves at 100,000 bundles. Same SQL on SQLite and PostgreSQL.
    """
    if not rows:
        return
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(f'"{column}"' for column in columns)
    markers = ", ".join([marker] * len(columns))
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({markers})"  # noqa: S608 - names are ours, values bound
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    connection.exec_driver_sql(sql, [tuple(row) for row in rows])
