"""The pure core of the graph: names, folding, derived ids, bundle extraction, change whitelist."""

from __future__ import annotations

from typing import Any

import pytest

from stave.graph.canonical import combine, encode_row, hash_rows
from stave.graph.changes import validate_changes
from stave.graph.extract import extract_release_bundle
from stave.graph.ids import derived_id
from stave.graph.names import fold, name_list
from tests.graph.world import white_album


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("  Apple Corps ", ["Apple Corps"]),
        (["EMI", " ", "EMI Group  plc", "EMI"], ["EMI", "EMI Group plc"]),
        (None, []),
        (42, []),
        (["a", 3, None, "b"], ["a", "b"]),
    ],
)
def test_name_lists_are_normalised(value: Any, expected: list[str]) -> None:
    assert name_list(value) == expected


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("Beyoncé", "beyonce"),
        ("  BEYONCE\t ", "beyonce"),
        ("Björk Guðmundsdóttir", "bjork guðmundsdottir"),
        ("Straße", "strasse"),
        ("ﬁve", "five"),  # NFKD folds the ligature
        ("Motörhead", "motorhead"),
    ],
)
def test_folding_removes_accents_case_and_extra_space(name: str, folded: str) -> None:
    assert fold(name) == folded


def test_derived_ids_depend_on_event_and_path_only() -> None:
    one = derived_id("person", "a" * 64, "$.body.release.tracks[0].songwriters[1]")
    assert one == derived_id("person", "a" * 64, "$.body.release.tracks[0].songwriters[1]")
    assert one.startswith("per_")
    assert len(one) == 4 + 32
    assert one != derived_id("person", "b" * 64, "$.body.release.tracks[0].songwriters[1]")
    assert one != derived_id("person", "a" * 64, "$.body.release.tracks[0].songwriters[2]")
    assert derived_id("release", "a" * 64, "$.body.release").startswith("rel_")


def test_the_white_album_bundle_extracts_its_release_tracks_and_credits() -> None:
    event = white_album()
    out = extract_release_bundle(event.id, event.body)
    release = out.nodes[0]
    assert release.kind == "release"
    assert release.id == derived_id("release", event.id, "$.body.release")  # the bundle gives no release id
    assert release.name == "The Beatles"
    assert release.altnames == ("The White Album",)
    assert release.attrs["date"] == "1968-11-22"
    assert release.attrs["formats"] == ["LP"]
    assert release.attrs["master"] is True
    assert "liner_notes" not in release.attrs  # "" is none
    tracklist = [edge for edge in out.edges if edge.rel == "tracklist"]
    assert len(tracklist) == 30
    assert (tracklist[0].side, tracklist[0].number) == (1, 1)
    labels = {node.name: node for node in out.nodes if node.kind == "label"}
    assert labels["Apple Records"].altnames == ("Apple Corps",)  # a string altname became a list
    capitol = labels["Capitol Records"].id
    assert any(e.src == capitol and e.rel == "label_parent" and e.dst == labels["EMI Records"].id for e in out.edges)
    # extraction is deterministic: the same event gives the same rows
    again = extract_release_bundle(event.id, event.body)
    assert again.nodes == out.nodes
    assert again.edges == out.edges


def test_claim_changes_outside_the_whitelist_are_named() -> None:
    errors = validate_changes(
        "track",
        [
            {"op": "add", "field": "guests", "value": {"person_name": "Eric Clapton"}},
            {"op": "set", "field": "owner", "value": "me"},
            {"op": "set", "field": "songwriters", "value": []},
            {"op": "set", "field": "title", "value": "  "},
        ],
    )
    assert [(e.index, e.rule) for e in errors] == [(1, "field-not-allowed"), (2, "op-not-allowed"), (3, "bad-value")]
    assert validate_changes("city", [{"op": "set", "field": "city_lat", "value": 51.5}]) == []
    assert validate_changes("city", [{"op": "set", "field": "city_lat", "value": "north"}])[0].rule == "bad-value"


def test_row_encoding_is_canonical_json_lines() -> None:
    assert encode_row(["b", 1, None]) == b'["b",1,null]\n'
    digest, count = hash_rows([("a", 1), ("b", 2)])
    assert count == 2
    assert digest != hash_rows([("b", 2), ("a", 1)])[0]  # order matters: tables are read in key order
    assert combine([("t", digest)]) != combine([("u", digest)])
