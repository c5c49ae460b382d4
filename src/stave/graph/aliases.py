"""Resolving ids through standing merges (``graph_alias``), in batches.

A merged node resolves to the node it was merged into (through chains of merges); a node's
**cluster** is its resolved id and every id that resolves to it. Queries answer for the
resolved node and count edges stated with any id of its cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from sqlalchemy import Connection, bindparam, select

from stave.graph import tables

__all__ = ["chunks", "cluster", "clusters", "resolve", "resolve_many"]

CHUNK: Final = 500  # ids per IN (...) query
MAX_HOPS: Final = 64  # merges chained deeper than this are not followed
_A = tables.alias.c
_BY_SOURCE = select(_A.node_id, _A.target_id).where(_A.node_id.in_(bindparam("ids", expanding=True)))
_BY_TARGET = select(_A.node_id).where(_A.target_id.in_(bindparam("ids", expanding=True)))


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def resolve_many(connection: Connection, ids: Iterable[str]) -> dict[str, str]:
    """The id each of ``ids`` resolves to (itself when not merged): one query per hop and 500 ids."""
    result = dict.fromkeys(ids, "")
    hop_of: dict[str, str] = {}
    pending = sorted(result)
    for _ in range(MAX_HOPS):
        if not pending:
            break
        found: dict[str, str] = {}
        for chunk in chunks(pending):
            found.update(connection.execute(_BY_SOURCE, {"ids": chunk}).all())
        hop_of.update(found)
        pending = sorted({target for target in found.values() if target not in hop_of})
    for node_id in result:
        current, steps = node_id, 0
        while current in hop_of and steps < MAX_HOPS:
            current, steps = hop_of[current], steps + 1
        result[node_id] = current
    return result


def resolve(connection: Connection, node_id: str) -> str:
    return resolve_many(connection, [node_id])[node_id]


def clusters(connection: Connection, ids: Iterable[str]) -> list[str]:
    """``ids`` and every id merged into any of them (directly or through other merges), in order."""
    out = list(dict.fromkeys(ids))
    seen = set(out)
    frontier = list(out)
    for _ in range(MAX_HOPS):
        merged: list[str] = []
        for chunk in chunks(frontier):
            merged += list(connection.execute(_BY_TARGET, {"ids": chunk}).scalars())
        frontier = [node_id for node_id in dict.fromkeys(merged) if node_id not in seen]
        if not frontier:
            break
        seen.update(frontier)
        out += frontier
    return out


def cluster(connection: Connection, resolved: str) -> list[str]:
    """A resolved id and every id merged into it, the resolved id first."""
    return clusters(connection, [resolved])
