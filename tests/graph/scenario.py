"""A deterministic log exercising every part of the graph: content, governance, merges, splits."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from stave.event import Event, PrivateKey
from tests.graph.world import ALICE, BOB, CAROL, DAVE, ERIN, EXAMPLES, example, sign

T0 = 1_760_000_000
DAY = 86_400


def _bundle(index: int, at: int, drummer_id: str, drummer: str) -> Event:
    credit = {
        "person_id": drummer_id,
        "person_name": drummer,
        "person_roles": [{"role_id": "role-drums", "role_name": "Drums"}],
        "person_city": {"city_name": "Liverpool", "city_lat": 53.4084, "city_long": -2.9916},
    }
    body: dict[str, Any] = {
        "release": {
            "release_name": f"Sessions Vol. {index}",
            "release_altnames": f"Séances {index}",
            "release_date": f"19{70 + index}",
            "release_format": ["CD", "LP"] if index % 2 else "CD",
            "master_release": [True, None],
            "labels": [
                {
                    "label_id": "label-parent",
                    "label_name": "Parent Records",
                    "label_parents": "",
                    "label_city": {"city_name": "London"},
                },
                {"label_id": f"label-{index}", "label_name": f"Imprint {index}", "label_parents": ["label-parent"]},
            ],
            "tracks": [
                {
                    "title": f"Song {index}.{n}",
                    "listen_link": f"https://example.org/{index}/{n}",
                    "songwriters": [credit] if n == 0 else [{"person_name": "Beyoncé Knowles"}],
                    "groups": [
                        {
                            "group_id": "group-band",
                            "group_name": "The Band",
                            "members": [credit, {"person_id": "bassist", "person_name": "Bassist"}],
                        }
                    ],
                    "cover_song": [{"title": "Old Standard", "artist_name": "Someone"}] if n == 1 else [],
                }
                for n in range(3)
            ],
        },
        "tracklist": [{"track_index": n, "disc_side": 1, "track_number": n + 1} for n in range(3)],
    }
    return sign("CREATE_RELEASE_BUNDLE", at, body, ALICE)


def _votes(claim_id: str, at: int, voters: tuple[PrivateKey, ...] = (BOB, CAROL, DAVE)) -> list[Event]:
    return [sign("VOTE", at + i, {"claim_id": claim_id, "vote": "yes"}, voter) for i, voter in enumerate(voters)]


def _finalize(claim_id: str, at: int, yes: int = 3) -> Event:
    body = {"claim_id": claim_id, "outcome": "accepted", "tally": {"yes": yes, "no": 0, "abstain": 0}}
    return sign("FINALIZE", at, body, ERIN)


@lru_cache(maxsize=1)
def events() -> tuple[Event, ...]:
    """The examples, then generated bundles, claims, votes, finalisations, a merge and its split."""
    out: list[Event] = [example(path.stem) for path in sorted(EXAMPLES.glob("[01]*.json"))]
    out += [_bundle(1, T0, "ringo", "Ringo Starr"), _bundle(2, T0 + 1, "starkey", "Richard Starkey")]
    conflict = {"group_id": "group-band", "member": {"person_id": "label-2", "name": "Not A Label"}}
    out.append(sign("ADD_MEMBER", T0 + 2, conflict, BOB))  # names a label as a person: recorded, kind kept
    joined = {"group_id": "group-band", "member": {"person_id": "keys", "name": "Keys", "roles": ["Organ"]}}
    out.append(sign("ADD_MEMBER", T0 + 3, {**joined, "joined_date": "1980"}, BOB))
    out.append(sign("REMOVE_MEMBER", T0 + 4, {"group_id": "group-band", "person_id": "keys", "left_date": "1985"}, BOB))
    # the bassist is a member through both bundles (dates unknown): leaving ends both memberships
    out.append(sign("REMOVE_MEMBER", T0 + 5, {"group_id": "group-band", "person_id": "bassist", "left_date": "1990"}))
    nobody = {"subject": {"kind": "person", "id": "nobody"}, "changes": [{"op": "set", "field": "name", "value": "X"}]}
    out.append(sign("ADD_CLAIM", T0 + 6, nobody, CAROL))  # names a node the log does not hold: unknown-node
    rename = sign(
        "ADD_CLAIM",
        T0 + 10,
        {
            "subject": {"kind": "label", "id": "label-1"},
            "changes": [
                {"op": "set", "field": "label_name", "value": "Imprint One"},
                {"op": "add", "field": "label_altnames", "value": "Imprint Nº 1"},
            ],
        },
        ALICE,
    )
    out += [rename, *_votes(rename.id, T0 + 11), _finalize(rename.id, T0 + 20)]
    merge = sign("MERGE_NODE", T0 + 30, {"kind": "person", "source_id": "starkey", "target_id": "ringo"}, BOB)
    out += [merge, *_votes(merge.id, T0 + 31, (ALICE, CAROL, DAVE)), _finalize(merge.id, T0 + 30 + 2 * DAY)]
    vote_change = sign("VOTE", T0 + 3 * DAY, {"claim_id": rename.id, "vote": "no"}, BOB)  # too late: closed
    split = sign("SPLIT_NODE", T0 + 3 * DAY, {"kind": "person", "node_id": "ringo", "merge_id": merge.id}, CAROL)
    out += [vote_change, split, *_votes(split.id, T0 + 3 * DAY + 1, (ALICE, BOB, DAVE))]
    out += [_finalize(split.id, T0 + 3 * DAY + 2), _finalize(split.id, T0 + 6 * DAY)]  # premature, then valid
    return tuple(out)
