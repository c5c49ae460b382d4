"""C2SP tlog-tiles paths, tile contents and entry bundles, against the spec's examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stave.errors import VerificationError
from stave.log.merkle import append, leaf_hash, reference_root
from stave.log.tiles import (
    TILE_WIDTH,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    full_tile_count,
    parse_entries_path,
    parse_tile_path,
    partial_tile_width,
    tile_count_for,
    tile_node_ids,
    tile_path,
)

MAX_UINT64 = 2**64 - 1


def test_index_encoding_from_the_spec() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(0, 0) == "tile/0/000"
    assert tile_path(2, 999) == "tile/2/999"
    assert tile_path(1, 1000) == "tile/1/x001/000"
    assert tile_path(63, MAX_UINT64) == "tile/63/x018/x446/x744/x073/x709/x551/615"
    assert tile_path(1, 1234067, 17) == "tile/1/x001/x234/067.p/17"
    assert tile_path(0, 5, 256) == tile_path(0, 5, None) == "tile/0/005"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(273, 112) == "tile/entries/273.p/112"


def test_parse_canonical_paths() -> None:
    assert parse_tile_path("tile/0/x001/x234/067") == (0, 1234067, None)
    assert parse_tile_path("tile/1/x001/x234/067.p/17") == (1, 1234067, 17)
    assert parse_tile_path("tile/63/x018/x446/x744/x073/x709/x551/615") == (63, MAX_UINT64, None)
    assert parse_tile_path("tile/2/000.p/1") == (2, 0, 1)
    assert parse_entries_path("tile/entries/273.p/112") == (273, 112)
    assert parse_entries_path("tile/entries/x001/000") == (1000, None)


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in the level
        "tile/64/000",  # level above 63
        "tile/-1/000",
        "tile/+1/000",
        "tile/ 0/000",
        "tile/0/00",  # groups are 3 digits
        "tile/0/0000",
        "tile/0/x000/001",  # leading zero group
        "tile/0/x000/000",
        "tile/0/x1/001",
        "tile/0/001/002",  # missing x
        "tile/0/x001",  # last group with x
        "tile/0/x001/x002",
        "tile/0/000.p/0",  # widths are 1..255
        "tile/0/000.p/256",
        "tile/0/000.p/05",
        "tile/0/000.p",
        "tile/0/000.p/",
        "tile/0/000.p/1/2",
        "tile/0/000/.p/1",
        "tile/0/x001.p/234",
        "tile/0/../000",
        "tile/0/x001/../000",
        "/tile/0/000",
        "tile/0/000/",
        "tile//0/000",
        "tile/0/",
        "tile/0",
        "tiles/0/000",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits are not ASCII digits
        "tile/\u0661/000",
        "tile/0/x018/x446/x744/x073/x709/x551/616",  # 2^64
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
        "tile/entries/000",
        "tile/0/000\n",
        "",
    ],
)
def test_parse_tile_path_refuses_non_canonical(path: str) -> None:
    with pytest.raises(VerificationError):
        parse_tile_path(path)


@pytest.mark.parametrize("path", ["tile/0/000", "tile/entries/x000/001", "tile/entries/000.p/256", "tile/entry/000"])
def test_parse_entries_path_refuses_non_canonical(path: str) -> None:
    with pytest.raises(VerificationError):
        parse_entries_path(path)


def test_paths_refuse_bad_arguments() -> None:
    for level, index, width in [(64, 0, None), (-1, 0, None), (0, -1, None), (0, 2**64, None), (0, 0, 0), (0, 0, 257)]:
        with pytest.raises(ValueError, match="must be an int"):
            tile_path(level, index, width)
    with pytest.raises(ValueError, match="must be an int"):
        tile_path(True, 0)


widths = st.one_of(st.none(), st.integers(1, TILE_WIDTH - 1))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 63), st.integers(0, MAX_UINT64), widths)
def test_tile_paths_round_trip(level: int, index: int, width: int | None) -> None:
    path = tile_path(level, index, width)
    assert parse_tile_path(path) == (level, index, width)
    entries = entries_path(index, width)
    assert parse_entries_path(entries) == (index, width)


path_text = st.lists(
    st.one_of(
        st.sampled_from(["tile", "entries", "x", ".p", "..", "", "0", "00", "x000", "x001", "255", "256"]),
        st.text(alphabet="tilex0123456789.p/ ", max_size=6),
    ),
    max_size=8,
).map("/".join)


@settings(max_examples=1000, deadline=None)
@given(path_text)
def test_only_canonical_paths_parse(path: str) -> None:
    """Whatever parses is exactly what the encoder writes for the parsed values."""
    try:
        level, index, width = parse_tile_path(path)
    except VerificationError:
        pass
    else:
        assert tile_path(level, index, width) == path
    try:
        index, width = parse_entries_path(path)
    except VerificationError:
        pass
    else:
        assert entries_path(index, width) == path


def test_tile_counts_from_the_spec() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial level 0
    # tile of width 112, one full level 1 tile, one partial level 1 tile of width 17, and one
    # partial level 2 tile of width 1."
    assert [full_tile_count(70_000, level) for level in range(4)] == [273, 1, 0, 0]
    assert [partial_tile_width(70_000, level) for level in range(4)] == [112, 17, 1, 0]
    assert [tile_count_for(70_000, level) for level in range(4)] == [274, 2, 1, 0]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1 tile of width 1."
    assert [full_tile_count(256, level) for level in range(3)] == [1, 0, 0]
    assert [partial_tile_width(256, level) for level in range(3)] == [0, 1, 0]
    assert tile_count_for(0) == 0
    assert tile_count_for(1) == 1


def test_tile_node_ids() -> None:
    assert tile_node_ids(1, 2, 3) == [(8, 512), (8, 513), (8, 514)]
    full = tile_node_ids(0, 1)
    assert len(full) == TILE_WIDTH
    assert full[0] == (0, 256)
    assert full[-1] == (0, 511)
    assert tile_node_ids(2, 0, 256) == tile_node_ids(2, 0)


def test_tiles_hold_the_stored_merkle_nodes() -> None:
    """Level-1 tile hashes are the roots of full level-0 tiles, i.e. stored nodes at tree level 8."""
    size = 600
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]
    _, _, nodes = append([], 0, leaves)
    stored = {(level, index): value for level, index, value in nodes}
    level0 = [stored[node] for node in tile_node_ids(0, 2, partial_tile_width(size, 0))]
    assert level0 == leaves[512:600]
    level1 = [stored[node] for node in tile_node_ids(1, 0, partial_tile_width(size, 1))]
    assert level1 == [reference_root(leaves[0:256]), reference_root(leaves[256:512])]


def test_entry_bundles() -> None:
    entries = [b"", b"a", b"\x00" * 300, bytes(range(256))]
    data = encode_entry_bundle(entries)
    assert data[:2] == b"\x00\x00"
    assert data[2:5] == b"\x00\x01a"
    assert data[5:7] == (300).to_bytes(2, "big")
    assert decode_entry_bundle(data) == entries
    assert decode_entry_bundle(data, count=4) == entries
    assert decode_entry_bundle(encode_entry_bundle([b"x" * 0xFFFF])) == [b"x" * 0xFFFF]


def test_entry_bundle_errors() -> None:
    with pytest.raises(ValueError, match="1 to 256 entries, got 0"):
        encode_entry_bundle([])
    with pytest.raises(ValueError, match="1 to 256 entries, got 257"):
        encode_entry_bundle([b""] * 257)
    with pytest.raises(ValueError, match="at most 65535"):
        encode_entry_bundle([b"x" * 0x10000])
    with pytest.raises(VerificationError, match="empty"):
        decode_entry_bundle(b"")
    with pytest.raises(VerificationError, match="needs 2 bytes"):
        decode_entry_bundle(b"\x00\x01a\x00")
    with pytest.raises(VerificationError, match="declares 5 bytes, 2 remain"):
        decode_entry_bundle(b"\x00\x05ab")
    with pytest.raises(VerificationError, match="more than 256 entries"):
        decode_entry_bundle(b"\x00\x00" * 257)
    with pytest.raises(VerificationError, match="expected 3 entries, got 2"):
        decode_entry_bundle(b"\x00\x00\x00\x00", count=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=600), min_size=1, max_size=TILE_WIDTH))
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert decode_entry_bundle(data, count=len(entries)) == entries
    for cut in {1, len(data) // 2, len(data) - 1}:
        if 0 < cut < len(data):
            try:
                decoded = decode_entry_bundle(data[:cut])
            except VerificationError:
                continue
            assert encode_entry_bundle(decoded) == data[:cut]
