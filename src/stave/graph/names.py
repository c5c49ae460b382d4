"""Names and their searchable folded forms. Pure.

Seed 000 writes name lists as a string in one place and a list in another, and uses ``""`` for
none; :func:`name_list` turns every such value into a list of trimmed, non-empty names.
:func:`fold` is the form search compares: NFKD, combining marks removed, casefolded,
whitespace collapsed, so "Beyoncé", "BEYONCE" and " beyonce " all fold to "beyonce".
"""

from __future__ import annotations

import unicodedata
from typing import Any

__all__ = ["fold", "name_list"]


def name_list(value: Any) -> list[str]:
    """A string or a list of strings as a list of trimmed names, empties dropped, duplicates once."""
    if value is None:
        return []
    if isinstance(value, str):  # the common case, kept fast: split() trims and collapses in C
        name = " ".join(value.split())
        return [name] if name else []
    names: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            name = " ".join(item.split())
            if name and name not in names:
                names.append(name)
    return names


def fold(name: str) -> str:
    """The accent- and case-insensitive form of a name, for search."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())
