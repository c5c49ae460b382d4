"""The digest's canonical serialisation of the projection's contents. Pure.

Each row is the RFC 8785 form of the JSON array of its column values (strings, integers, null;
the tables hold no floats or booleans: those live inside canonical JSON text), followed by a
newline. A table's hash is SHA-256 over its rows in key order; the digest is SHA-256 over the
lines ``<table name> <table hash hex>\\n`` in the fixed table order. Two replicas with the same
contents get the same digest whatever database they use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from stave.event import canonicalize

__all__ = ["combine", "encode_row", "hash_rows"]


def encode_row(values: Sequence[Any]) -> bytes:
    return canonicalize(list(values)) + b"\n"


def hash_rows(rows: Iterable[Sequence[Any]]) -> tuple[str, int]:
    """(hex SHA-256 over the encoded rows, number of rows)."""
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        digest.update(encode_row(row))
        count += 1
    return digest.hexdigest(), count


def combine(table_hashes: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, table_hash in table_hashes:
        digest.update(f"{name} {table_hash}\n".encode())
    return digest.hexdigest()
