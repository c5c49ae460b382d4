"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, tile contents and entry bundles. Pure.

A tile is 256 consecutive Merkle tree hashes at one height: the tile at level L, index N holds the
stored nodes ``(8·L, N·256 + i)`` for i in 0..255 (level-0 tiles hold leaf hashes, level-1 tiles
the roots of full level-0 tiles, and so on). The rightmost tile of each level is usually
*partial*, 1 to 255 hashes wide, and is then named with a ``.p/<W>`` suffix.

Paths are relative to the log's URL prefix: ``tile/<L>/<N>[.p/<W>]`` and
``tile/entries/<N>[.p/<W>]``. ``<N>`` is written in groups of three digits, every group but the
last prefixed with ``x`` (1234067 → ``x001/x234/067``), so tiles can be served straight from a
file system. Parsing accepts only the one canonical spelling of each path: anything else (leading
zeros, a leading ``x000`` group, a width of 0 or 256, ``..``, non-ASCII digits) raises
:class:`~stave.errors.VerificationError`, a ``ValueError``, because a path a client sent is data.

Entry bundles are the log entries behind a level-0 tile, each as a big-endian uint16 length and
the entry's bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from stave.errors import VerificationError
from stave.log.merkle import NodeId

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_TILE_LEVEL",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "decode_entry_bundle",
    "encode_entry_bundle",
    "entries_path",
    "full_tile_count",
    "parse_entries_path",
    "parse_tile_path",
    "partial_tile_width",
    "tile_count_for",
    "tile_node_ids",
    "tile_path",
]

TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT
MAX_TILE_LEVEL: Final = 63
MAX_ENTRY_SIZE: Final = 0xFFFF  # the uint16 length prefix
_MAX_INDEX: Final = (1 << 64) - 1  # tree sizes and indices are uint64 across the ecosystem

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_GROUP = re.compile(r"x[0-9]{3}")
_LAST_GROUP = re.compile(r"[0-9]{3}")


def _check_int(value: int, what: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{what} must be an int from {low} to {high}, got {value!r}")


def _width(width: int | None) -> int | None:
    """A partial width (1–255), or None for a full tile; 256 is accepted as full."""
    if width is None:
        return None
    _check_int(width, "tile width", 1, TILE_WIDTH)
    return None if width == TILE_WIDTH else width


def _encode_index(index: int) -> str:
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + group for group in groups[:-1]), groups[-1]])


def _suffix(width: int | None) -> str:
    return "" if width is None else f".p/{width}"


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for the tile at ``level`` and ``index``; ``width`` None (or 256) is full."""
    _check_int(level, "tile level", 0, MAX_TILE_LEVEL)
    _check_int(index, "tile index", 0, _MAX_INDEX)
    return f"tile/{level}/{_encode_index(index)}{_suffix(_width(width))}"


def entries_path(index: int, width: int | None = None) -> str:
    """``tile/entries/<N>[.p/<W>]`` for the entry bundle behind level-0 tile ``index``."""
    _check_int(index, "bundle index", 0, _MAX_INDEX)
    return f"tile/entries/{_encode_index(index)}{_suffix(_width(width))}"


def _parse_index_and_width(path: str, elements: list[str]) -> tuple[int, int | None]:
    """Parse ``<N>[.p/<W>]`` split on ``/``."""
    width: int | None = None
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        if not _WIDTH.fullmatch(elements[-1]) or int(elements[-1]) >= TILE_WIDTH:
            raise VerificationError(f"tile path {path!r}: partial width must be 1 to 255 without leading zeros")
        width = int(elements[-1])
        elements = [*elements[:-2], elements[-2][:-2]]
    if not elements or not all(_GROUP.fullmatch(group) for group in elements[:-1]):
        raise VerificationError(f"tile path {path!r}: index groups before the last must be 'x' and 3 digits")
    if not _LAST_GROUP.fullmatch(elements[-1]):
        raise VerificationError(f"tile path {path!r}: the last index group must be 3 digits")
    if len(elements) > 1 and elements[0] == "x000":
        raise VerificationError(f"tile path {path!r}: the index has a leading zero group")
    index = int("".join(group.lstrip("x") for group in elements))
    if index > _MAX_INDEX:
        raise VerificationError(f"tile path {path!r}: index {index} exceeds 2^64 − 1")
    return index, width


def _split_path(path: str) -> list[str]:
    if not isinstance(path, str):
        raise VerificationError(f"tile path must be a string, got {type(path).__name__}")
    elements = path.split("/")
    if len(elements) < 3 or elements[0] != "tile":
        raise VerificationError(f"tile path {path!r}: expected 'tile/<L>/<N>[.p/<W>]' or 'tile/entries/<N>[.p/<W>]'")
    return elements


def parse_tile_path(path: str) -> tuple[int, int, int | None]:
    """``(level, index, width)`` of a canonical ``tile/<L>/<N>[.p/<W>]`` path; width is None when full."""
    elements = _split_path(path)
    if not _LEVEL.fullmatch(elements[1]) or int(elements[1]) > MAX_TILE_LEVEL:
        raise VerificationError(f"tile path {path!r}: level must be 0 to 63 without leading zeros")
    index, width = _parse_index_and_width(path, elements[2:])
    return int(elements[1]), index, width


def parse_entries_path(path: str) -> tuple[int, int | None]:
    """``(index, width)`` of a canonical ``tile/entries/<N>[.p/<W>]`` path; width is None when full."""
    elements = _split_path(path)
    if elements[1] != "entries":
        raise VerificationError(f"tile path {path!r}: expected 'tile/entries/<N>[.p/<W>]'")
    return _parse_index_and_width(path, elements[2:])


def tile_node_ids(level: int, index: int, width: int | None = None) -> list[NodeId]:
    """The stored nodes ``(tree_level, node_index)`` that make up a tile, left to right.

    Tile level L holds tree level 8·L; a full tile (``width`` None or 256) holds 256 nodes.
    """
    _check_int(level, "tile level", 0, MAX_TILE_LEVEL)
    _check_int(index, "tile index", 0, _MAX_INDEX)
    count = _width(width) or TILE_WIDTH
    first = index * TILE_WIDTH
    return [(level * TILE_HEIGHT, first + offset) for offset in range(count)]


def _nodes_at(size: int, level: int) -> int:
    _check_int(size, "tree size", 0, _MAX_INDEX)
    _check_int(level, "tile level", 0, MAX_TILE_LEVEL)
    return size >> (TILE_HEIGHT * level)


def full_tile_count(size: int, level: int = 0) -> int:
    """How many full tiles a tree of ``size`` leaves has at ``level``."""
    return _nodes_at(size, level) // TILE_WIDTH


def partial_tile_width(size: int, level: int = 0) -> int:
    """The width of the partial tile at ``level`` for a tree of ``size`` (0: there is none)."""
    return _nodes_at(size, level) % TILE_WIDTH


def tile_count_for(size: int, level: int = 0) -> int:
    """How many tiles, full and partial, a tree of ``size`` leaves has at ``level``.

    Following the spec's example, a tree of 70,000 leaves has 274 tiles at level 0 (273 full and
    one of width 112), 2 at level 1 (one full, one of width 17), 1 at level 2 (width 1), 0 above.
    """
    return -(-_nodes_at(size, level) // TILE_WIDTH)


def encode_entry_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes (1 to 256 entries)."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    parts: list[bytes] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, bytes):
            raise ValueError(f"entry {position} must be bytes, got {type(entry).__name__}")
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry {position} is {len(entry)} bytes; a bundle entry holds at most {MAX_ENTRY_SIZE}")
        parts.append(len(entry).to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_entry_bundle(data: bytes, count: int | None = None) -> list[bytes]:
    """The entries of a bundle; ``count``, when given, is the number the tile's width requires."""
    if count is not None:
        _check_int(count, "entry count", 1, TILE_WIDTH)
    view = memoryview(data)
    entries: list[bytes] = []
    offset = 0
    while offset < len(view):
        if len(entries) == TILE_WIDTH:
            raise VerificationError(f"entry bundle holds more than {TILE_WIDTH} entries (extra data at byte {offset})")
        if offset + 2 > len(view):
            raise VerificationError(f"entry bundle is truncated: a length prefix at byte {offset} needs 2 bytes")
        size = int.from_bytes(view[offset : offset + 2], "big")
        start, offset = offset + 2, offset + 2 + size
        if offset > len(view):
            raise VerificationError(
                f"entry bundle is truncated: entry {len(entries)} at byte {start - 2} declares {size} bytes,"
                f" {len(view) - start} remain"
            )
        entries.append(bytes(view[start:offset]))
    if not entries:
        raise VerificationError("entry bundle is empty: expected at least 1 entry")
    if count is not None and len(entries) != count:
        raise VerificationError(f"entry bundle has wrong size: expected {count} entries, got {len(entries)}")
    return entries
