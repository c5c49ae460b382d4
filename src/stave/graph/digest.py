"""The projection's state digest and reconciliation against a fresh rebuild.

:func:`state_digest` reads every table (``tables.DIGEST_TABLES``) in key order, with string keys
compared bytewise on both databases (``COLLATE "C"`` on PostgreSQL, SQLite's default), and
hashes the rows as :mod:`stave.graph.canonical` says. Columns that are not content are left
out: the cursor's ``updated_at`` (a wall-clock time) and the names' ``name_id`` (a row number
for the search index).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Column, String, Table, Text, select

from stave.db import Database
from stave.graph import tables
from stave.graph.canonical import combine, encode_row, hash_rows
from stave.graph.projector import Projector, open_graph_database

__all__ = ["Difference", "StateDigest", "compare", "reconcile", "state_digest", "table_rows"]

_EXCLUDED: Final = {("graph_cursor", "updated_at"), ("graph_names", "name_id")}


@dataclass(frozen=True, slots=True)
class StateDigest:
    digest: str
    tables: dict[str, tuple[str, int]]  # table -> (hash, rows)


@dataclass
class Difference:
    """Rows of one table found on one side only (as canonical JSON lines), and their counts."""

    table: str
    only_live: int = 0
    only_fresh: int = 0
    examples_live: list[str] = field(default_factory=list)
    examples_fresh: list[str] = field(default_factory=list)


def _columns(table: Table) -> list[Column[Any]]:
    return [column for column in table.columns if (table.name, column.name) not in _EXCLUDED]


def table_rows(
    database: Database, table: Table, key: Sequence[str], *, batch: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """Every row of ``table`` (content columns) in bytewise key order, streamed."""
    order = []
    for name in key:
        column = table.c[name]
        is_text = isinstance(column.type, String | Text)
        order.append(column.collate("C") if is_text and database.dialect == "postgresql" else column)
    query = select(*_columns(table)).order_by(*order)
    with database.engine.connect().execution_options(stream_results=True, yield_per=batch) as connection:
        for row in connection.execute(query):
            yield tuple(row)


def state_digest(database: Database) -> StateDigest:
    per_table = {table.name: hash_rows(table_rows(database, table, key)) for table, key in tables.DIGEST_TABLES}
    return StateDigest(combine((name, value[0]) for name, value in per_table.items()), per_table)


def compare(live: Database, fresh: Database, *, examples: int = 5) -> list[Difference]:
    """Per table, the rows only one side has (tables that agree are left out).

    Both sides are read in the same bytewise key order, so this is a streaming merge: memory
    stays flat whatever the size of the graph.
    """
    differences: list[Difference] = []
    for table, key in tables.DIGEST_TABLES:
        positions = [index for index, column in enumerate(_columns(table)) if column.name in key]
        difference = Difference(table.name)
        left, right = table_rows(live, table, key), table_rows(fresh, table, key)
        a, b = next(left, None), next(right, None)
        while a is not None or b is not None:
            key_a = None if a is None else [a[i] for i in positions]
            key_b = None if b is None else [b[i] for i in positions]
            if a is not None and b is not None and key_a == key_b:
                if a != b:
                    _note(difference, a, live=True, examples=examples)
                    _note(difference, b, live=False, examples=examples)
                a, b = next(left, None), next(right, None)
            elif b is None or (a is not None and key_a is not None and key_b is not None and key_a < key_b):
                assert a is not None
                _note(difference, a, live=True, examples=examples)
                a = next(left, None)
            else:
                _note(difference, b, live=False, examples=examples)
                b = next(right, None)
        if difference.only_live or difference.only_fresh:
            differences.append(difference)
    return differences


def _note(difference: Difference, row: tuple[Any, ...], *, live: bool, examples: int) -> None:
    text = encode_row(row).decode().rstrip()
    if live:
        difference.only_live += 1
        if len(difference.examples_live) < examples:
            difference.examples_live.append(text)
    else:
        difference.only_fresh += 1
        if len(difference.examples_fresh) < examples:
            difference.examples_fresh.append(text)


def reconcile(live: Projector, scratch_url: str) -> list[Difference]:
    """Rebuild from the log into the (empty) database at ``scratch_url``, up to where ``live`` is,
    and compare: an empty list means the live projection is exactly what a rebuild gives."""
    live.catch_up()
    seq, _ = live.position()
    scratch = open_graph_database(scratch_url)
    try:
        fresh = Projector(scratch, live.log, live.events, live.rules, batch_size=live.batch_size)
        fresh.reset()
        fresh.catch_up(max_entries=seq + 1)
        return compare(live.database, scratch)
    finally:
        scratch.close()
