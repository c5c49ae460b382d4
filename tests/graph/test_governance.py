"""Governance end to end through the projection: proposals, votes, amendments, withdrawals,
finalisations (valid, premature, forged), merges and splits, reverts and rewards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from stave import graph
from stave.event import Event, PrivateKey
from stave.graph import tables
from stave.graph.ids import derived_id
from stave.graph.rules import Rules
from tests.graph.test_projection import GUITAR_WEEPS
from tests.graph.world import ALICE, BOB, CAROL, DAVE, ERIN, World, pub, sign, white_album

T0 = 1_760_000_000
HOUR = 3600
DAY = 24 * HOUR
CLAPTON = {
    "person_id": "890af521c731b9b4135481c1ea0a9c9ccad7e77f8209a14a4b1a7fcbff51623c",
    "person_name": "Eric Clapton",
    "person_roles": [
        {"role_id": "d7dfac0be445efc1b88a2db0b1d942478e42d2e48a1f6bd48f1676f9e8e0cca9", "role_name": "Lead Guitar"}
    ],
}


def claim(changes: list[dict[str, Any]], at: int, author: PrivateKey = ALICE, subject: str = GUITAR_WEEPS) -> Event:
    return sign("ADD_CLAIM", at, {"subject": {"kind": "track", "id": subject}, "changes": changes}, author)


def vote(claim_id: str, value: str, at: int, voter: PrivateKey) -> Event:
    return sign("VOTE", at, {"claim_id": claim_id, "vote": value}, voter)


def finalize(claim_id: str, outcome: str, tally: tuple[int, int, int], at: int, by: PrivateKey = ERIN) -> Event:
    yes, no, abstain = tally
    body = {"claim_id": claim_id, "outcome": outcome, "tally": {"yes": yes, "no": no, "abstain": abstain}}
    return sign("FINALIZE", at, body, by)


def guests(world: World, track_id: str = GUITAR_WEEPS) -> list[str]:
    release = graph.release(world.graph, derived_id("release", white_album().id, "$.body.release"))
    assert release is not None
    track = next(t for t in release["tracklist"] if t["id"] == track_id)
    return [c["person"]["name"] for c in track["credits"] if c["as"] == "guest"]


def status(world: World, claim_id: str) -> dict[str, Any]:
    return next(c for c in graph.claims(world.graph, None) if c["claim_id"] == claim_id)


def refusals(world: World, event: Event) -> list[tuple[str, str]]:
    return [(r["rule"], r["detail"]) for r in graph.rejections(world.graph, event.id)]


@pytest.fixture
def white(world: World) -> World:
    world.project(white_album())
    return world


def test_a_claim_accepted_by_three_yes_votes_changes_the_graph(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    votes = [vote(add.id, "yes", T0 + 10 + i, voter) for i, voter in enumerate((BOB, CAROL, DAVE))]
    white.project(add, *votes)
    assert status(white, add.id)["votes"] == {"yes": 3, "no": 0, "abstain": 0}
    assert status(white, add.id)["closes_at"] == T0 + 12  # unanimous: decided at the third Yes
    assert "Eric Clapton" not in guests(white)  # nothing changes before the FINALIZE
    done = finalize(add.id, "accepted", (3, 0, 0), T0 + 20)
    white.project(done)
    assert status(white, add.id)["status"] == "accepted"
    assert "Eric Clapton" in guests(white)
    clapton = graph.discography(white.graph, CLAPTON["person_id"])
    assert clapton is not None
    assert clapton["releases"][0]["tracks"][0]["as"] == {"guest": ["Lead Guitar"]}
    history = graph.history(white.graph, GUITAR_WEEPS)
    assert [h["type"] for h in history] == ["CREATE_RELEASE_BUNDLE", "ADD_CLAIM", "FINALIZE"]
    assert graph.rejections(white.graph) == []


def test_a_claim_rejected_by_three_no_votes_changes_nothing(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    no_votes = [vote(add.id, "no", T0 + HOUR, voter) for voter in (BOB, CAROL, DAVE)]
    white.project(add, *no_votes)
    too_soon = finalize(add.id, "rejected", (0, 3, 0), T0 + 2 * HOUR)  # the author gets 72 h to answer
    white.project(too_soon)
    [(rule, detail)] = refusals(white, too_soon)
    assert rule == "premature"
    assert str(T0 + HOUR + 72 * HOUR) in detail
    done = finalize(add.id, "rejected", (0, 3, 0), T0 + HOUR + 72 * HOUR)
    white.project(done)
    assert status(white, add.id)["status"] == "rejected"
    assert "Eric Clapton" not in guests(white)
    late_vote = vote(add.id, "yes", T0 + 100 * HOUR, ERIN)
    white.project(late_vote)
    assert refusals(white, late_vote)[0][0] == "not-open"


def test_a_claim_withdrawn_by_its_author_only(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    not_author = sign("DELETE_CLAIM", T0 + 1, {"claim_id": add.id}, BOB)
    withdraw = sign("DELETE_CLAIM", T0 + 2, {"claim_id": add.id, "reason": "wrong track"}, ALICE)
    after = vote(add.id, "yes", T0 + 3, BOB)
    white.project(add, not_author, withdraw, after)
    assert refusals(white, not_author)[0][0] == "not-author"
    assert status(white, add.id)["status"] == "withdrawn"
    assert refusals(white, after)[0][0] == "not-open"
    assert graph.claims(white.graph) == []  # no open claims left
    final = finalize(add.id, "accepted", (0, 0, 0), T0 + 30 * DAY)
    white.project(final)
    assert refusals(white, final)[0][0] == "not-open"
    assert "Eric Clapton" not in guests(white)


def test_a_changed_vote_replaces_the_earlier_one(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    white.project(add, vote(add.id, "no", T0 + 1, BOB), vote(add.id, "abstain", T0 + 2, CAROL))
    assert status(white, add.id)["votes"] == {"yes": 0, "no": 1, "abstain": 1}
    white.project(vote(add.id, "yes", T0 + 3, BOB))
    assert status(white, add.id)["votes"] == {"yes": 1, "no": 0, "abstain": 1}
    own = vote(add.id, "yes", T0 + 4, ALICE)
    white.project(own)
    assert refusals(white, own)[0][0] == "own-claim"
    assert status(white, add.id)["votes"]["yes"] == 1
    # at expiry, 1 Yes against 0 No accepts
    done = finalize(add.id, "accepted", (1, 0, 1), T0 + 7 * DAY)
    white.project(done)
    assert status(white, add.id)["status"] == "accepted"


def test_an_amendment_restarts_votes_and_the_clock(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": {"person_name": "E. Clapton"}}], T0)
    white.project(add, vote(add.id, "yes", T0 + 1, BOB), vote(add.id, "yes", T0 + 2, CAROL))
    amend = sign(
        "EDIT_CLAIM", T0 + 3, {"claim_id": add.id, "changes": [{"op": "add", "field": "guests", "value": CLAPTON}]}
    )
    by_other = sign(
        "EDIT_CLAIM",
        T0 + 4,
        {"claim_id": add.id, "changes": []} | {"changes": [{"op": "set", "field": "title", "value": "x"}]},
        BOB,
    )
    white.project(amend, by_other)
    assert refusals(white, by_other)[0][0] == "not-author"
    item = status(white, add.id)
    assert item["votes"] == {"yes": 0, "no": 0, "abstain": 0}
    assert item["amended_at"] == T0 + 3
    assert item["changes"][0]["value"]["person_name"] == "Eric Clapton"
    premature = finalize(add.id, "accepted", (0, 0, 0), T0 + 7 * DAY)  # the clock restarted at T0 + 3
    white.project(premature)
    assert refusals(white, premature)[0][0] == "premature"
    white.project(finalize(add.id, "accepted", (0, 0, 0), T0 + 3 + 7 * DAY))  # unreviewed, non-destructive: accepted
    assert guests(white).count("Eric Clapton") == 1
    assert "E. Clapton" not in guests(white)


def test_forged_finalizations_are_recorded_and_change_nothing(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    white.project(add, vote(add.id, "yes", T0 + 1, BOB), vote(add.id, "no", T0 + 2, CAROL))
    forged_tally = finalize(add.id, "accepted", (3, 0, 0), T0 + 8 * DAY)
    forged_outcome = finalize(add.id, "accepted", (1, 1, 0), T0 + 8 * DAY + 1)  # a tie rejects
    unknown = finalize("ef" * 32, "accepted", (0, 0, 0), T0 + 8 * DAY + 2)
    white.project(forged_tally, forged_outcome, unknown)
    assert refusals(white, forged_tally)[0][0] == "tally-mismatch"
    assert refusals(white, forged_outcome)[0][0] == "outcome-mismatch"
    assert refusals(white, unknown)[0][0] == "unknown-claim"
    assert status(white, add.id)["status"] == "open"
    assert "Eric Clapton" not in guests(white)
    right = finalize(add.id, "rejected", (1, 1, 0), T0 + 8 * DAY + 3)
    white.project(right)
    assert status(white, add.id)["status"] == "rejected"
    assert refusals(white, right) == []


def test_changes_outside_the_whitelist_are_refused_at_finalisation(white: World) -> None:
    add = claim(
        [{"op": "set", "field": "title", "value": "While My Guitar"}, {"op": "set", "field": "owner", "value": "me"}],
        T0,
    )
    white.project(add, *(vote(add.id, "yes", T0 + 1, v) for v in (BOB, CAROL, DAVE)))
    done = finalize(add.id, "accepted", (3, 0, 0), T0 + 2)
    white.project(done)
    assert status(white, add.id)["status"] == "accepted"  # the vote stands
    [(rule, detail)] = refusals(white, done)
    assert rule == "field-not-allowed"
    assert "changes[1]" in detail
    track = graph.node(white.graph, GUITAR_WEEPS)
    assert track is not None
    assert track["name"] == "While My Guitar Gently Weeps"


def test_field_changes_and_their_revert(white: World) -> None:
    add = claim(
        [
            {"op": "set", "field": "title", "value": "While My Guitar Gently Weeps (Take 27)"},
            {"op": "add", "field": "altnames", "value": "WMGGW"},
            {"op": "add", "field": "guests", "value": CLAPTON},
            {"op": "add", "field": "listen_link", "value": "https://example.org/wmggw"},
        ],
        T0,
    )
    white.project(add, *(vote(add.id, "yes", T0 + 1, v) for v in (BOB, CAROL, DAVE)))
    white.project(finalize(add.id, "accepted", (3, 0, 0), T0 + 2))
    track = graph.node(white.graph, GUITAR_WEEPS)
    assert track is not None
    assert track["name"].endswith("(Take 27)")
    assert track["altnames"] == ["WMGGW"]
    assert graph.search(white.graph, "wmggw")[0]["id"] == GUITAR_WEEPS
    assert track["listen_links"] == ["https://example.org/wmggw"]
    revert = sign(
        "ADD_CLAIM",
        T0 + 3 * DAY,
        {
            "subject": {"kind": "track", "id": GUITAR_WEEPS},
            "changes": [
                {"op": "set", "field": "title", "value": "While My Guitar Gently Weeps"},
                {"op": "remove", "field": "altnames", "value": "WMGGW"},
                {"op": "remove", "field": "guests", "value": CLAPTON["person_id"]},
                {"op": "remove", "field": "listen_link", "value": "https://example.org/wmggw"},
            ],
        },
        BOB,
        parents=[add.id],
    )
    white.project(revert, *(vote(revert.id, "yes", T0 + 3 * DAY + 1, v) for v in (ALICE, CAROL, DAVE)))
    early = finalize(revert.id, "accepted", (3, 0, 0), T0 + 3 * DAY + 2)
    white.project(early)
    assert refusals(white, early)[0][0] == "premature"  # a revert of an addition removes: 48 h
    white.project(finalize(revert.id, "accepted", (3, 0, 0), T0 + 5 * DAY))
    track = graph.node(white.graph, GUITAR_WEEPS)
    assert track is not None
    assert (track["name"], track["altnames"]) == ("While My Guitar Gently Weeps", [])
    assert "listen_links" not in track
    assert "Eric Clapton" not in guests(white)
    assert graph.search(white.graph, "wmggw") == []


def _duplicate_world(world: World) -> tuple[str, str]:
    """Two bundles crediting the same drummer under two ids."""

    def bundle(title: str, drummer_id: str, drummer: str, at: int) -> Event:
        credit = {"person_id": drummer_id, "person_name": drummer, "person_roles": [{"role_name": "Drums"}]}
        body = {
            "release": {
                "release_name": title,
                "release_date": "1969",
                "tracks": [{"title": title, "songwriters": [credit]}],
            }
        }
        return sign("CREATE_RELEASE_BUNDLE", at, body, ALICE)

    world.project(
        bundle("Octopus's Garden", "ringo", "Ringo Starr", T0),
        bundle("Early Takes", "starkey", "Richard Starkey", T0 + 1),
    )
    return "starkey", "ringo"


def _tables(world: World) -> dict[str, tuple[str, int]]:
    hashes = graph.state_digest(world.graph).tables
    return {
        name: hashes[name] for name in ("graph_nodes", "graph_names", "graph_edges", "graph_alias", "graph_memberships")
    }


def test_merge_then_split_restores_the_graph(world: World) -> None:
    source, target = _duplicate_world(world)
    before = (_tables(world), graph.discography(world.graph, target), graph.discography(world.graph, source))
    merge = sign("MERGE_NODE", T0 + 10, {"kind": "person", "source_id": source, "target_id": target}, BOB)
    world.project(merge, *(vote(merge.id, "yes", T0 + 11, v) for v in (ALICE, CAROL, DAVE)))
    early = finalize(merge.id, "accepted", (3, 0, 0), T0 + 12)
    world.project(early)
    assert refusals(world, early)[0][0] == "premature"  # destructive: open at least 48 h
    world.project(finalize(merge.id, "accepted", (3, 0, 0), T0 + 10 + 2 * DAY))
    merged = graph.discography(world.graph, source)  # the old id keeps resolving
    assert merged is not None
    assert merged["id"] == target
    assert merged["merged"] == [source]
    assert sorted(r["name"] for r in merged["releases"]) == ["Early Takes", "Octopus's Garden"]
    assert [hit["id"] for hit in graph.search(world.graph, "richard starkey")] == [target]
    assert {h["type"] for h in graph.history(world.graph, target)} >= {"MERGE_NODE", "FINALIZE"}

    split = sign("SPLIT_NODE", T0 + 3 * DAY, {"kind": "person", "node_id": target, "merge_id": merge.id}, CAROL)
    world.project(split, *(vote(split.id, "yes", T0 + 3 * DAY + 1, v) for v in (ALICE, BOB, DAVE)))
    world.project(finalize(split.id, "accepted", (3, 0, 0), T0 + 5 * DAY))
    after = (_tables(world), graph.discography(world.graph, target), graph.discography(world.graph, source))
    assert after == before


def test_a_merge_that_would_make_a_cycle_is_refused(world: World) -> None:
    source, target = _duplicate_world(world)
    one = sign("MERGE_NODE", T0 + 10, {"kind": "person", "source_id": source, "target_id": target}, BOB)
    two = sign("MERGE_NODE", T0 + 11, {"kind": "person", "source_id": target, "target_id": source}, BOB)
    wrong_kind = sign("MERGE_NODE", T0 + 12, {"kind": "group", "source_id": target, "target_id": source}, BOB)
    world.project(
        one, two, wrong_kind, *(vote(c.id, "yes", T0 + 13, v) for c in (one, two) for v in (ALICE, CAROL, DAVE))
    )
    assert refusals(world, wrong_kind)[0][0] == "kind-mismatch"
    world.project(finalize(one.id, "accepted", (3, 0, 0), T0 + 3 * DAY))
    second = finalize(two.id, "accepted", (3, 0, 0), T0 + 3 * DAY + 1)
    world.project(second)
    assert refusals(world, second)[0][0] == "merge-conflict"
    node = graph.node(world.graph, target)
    assert node is not None
    assert node["id"] == target


def test_a_split_moves_credits_to_a_new_node(world: World) -> None:
    source, _target = _duplicate_world(world)
    early_takes = graph.discography(world.graph, source)
    assert early_takes is not None
    credit_event = graph.history(world.graph, source)[0]["event_id"]
    split = sign(
        "SPLIT_NODE",
        T0 + 10,
        {"kind": "person", "node_id": source, "move_credits": [credit_event], "new_name": "Richard Starkey (session)"},
        BOB,
    )
    world.project(split, *(vote(split.id, "yes", T0 + 11, v) for v in (ALICE, CAROL, DAVE)))
    world.project(finalize(split.id, "accepted", (3, 0, 0), T0 + 3 * DAY))
    new_id = derived_id("person", split.id, "$.body.new_name")
    moved = graph.discography(world.graph, new_id)
    assert moved is not None
    assert moved["name"] == "Richard Starkey (session)"
    assert [r["name"] for r in moved["releases"]] == ["Early Takes"]
    left = graph.discography(world.graph, source)
    assert left is not None
    assert left["releases"] == []


def test_rewards_are_checked_and_totalled(tmp_path: Path) -> None:
    world = World(tmp_path / "rewards", rules=Rules(reward_distributors=frozenset({pub(ERIN)})))
    try:
        world.project(white_album())
        add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
        world.project(add, *(vote(add.id, "yes", T0 + 1, v) for v in (BOB, CAROL, DAVE)))
        world.project(finalize(add.id, "accepted", (3, 0, 0), T0 + 2))
        pay = {
            "unit": "points",
            "pool": 100,
            "allocations": [{"recipient": pub(ALICE), "amount": 70, "claim_ids": [add.id]}],
        }
        paid = sign("DISTRIBUTE_REWARDS", T0 + 3, pay, ERIN)
        twice = sign("DISTRIBUTE_REWARDS", T0 + 4, pay, ERIN)
        stranger = sign("DISTRIBUTE_REWARDS", T0 + 5, {**pay, "pool": 99}, BOB)
        voter = sign(
            "DISTRIBUTE_REWARDS",
            T0 + 6,
            {
                "unit": "points",
                "pool": 10,
                "allocations": [{"recipient": pub(BOB), "amount": 5, "claim_ids": [add.id]}],
            },
            ERIN,
        )
        world.project(paid, twice, stranger, voter)
        assert refusals(world, paid) == []
        assert refusals(world, twice)[0][0] == "already-rewarded"
        assert refusals(world, stranger)[0][0] == "distributor-not-allowed"
        assert refusals(world, voter)[0][0] == "not-claim-author"
        assert graph.reward_totals(world.graph) == [
            {"recipient": pub(ALICE), "unit": "points", "total": 70, "distributions": 1}
        ]
    finally:
        world.close()


def test_likes_and_threaded_discussion_are_kept(white: World) -> None:
    add = claim([{"op": "add", "field": "guests", "value": CLAPTON}], T0)
    comment = sign("DISCUSS", T0 + 1, {"text": "Source?", "claim_id": add.id}, BOB, parents=[add.id])
    reply = sign("DISCUSS", T0 + 2, {"text": "His autobiography.", "claim_id": add.id}, ALICE, parents=[comment.id])
    like = sign("LIKE", T0 + 3, {"target": add.id}, CAROL)
    white.project(add, comment, reply, like, sign("LIKE", T0 + 4, {"target": add.id}, CAROL))
    with white.graph.engine.connect() as connection:
        thread = connection.execute(
            select(tables.comments.c.event_id, tables.comments.c.parent_id).order_by(tables.comments.c.seq)
        ).all()
        likes = connection.execute(select(tables.likes)).all()
    assert [tuple(row) for row in thread] == [(comment.id, add.id), (reply.id, comment.id)]
    assert len(likes) == 1  # one like per author and target


def test_a_claim_on_a_merged_duplicate_changes_the_node_it_resolves_to(world: World) -> None:
    source, target = _duplicate_world(world)
    merge = sign("MERGE_NODE", T0 + 10, {"kind": "person", "source_id": source, "target_id": target}, BOB)
    world.project(merge, *(vote(merge.id, "yes", T0 + 11, v) for v in (ALICE, CAROL, DAVE)))
    world.project(finalize(merge.id, "accepted", (3, 0, 0), T0 + 3 * DAY))
    rename = sign(
        "ADD_CLAIM",
        T0 + 4 * DAY,
        {
            "subject": {"kind": "person", "id": source},
            "changes": [{"op": "add", "field": "altnames", "value": "Ritchie"}],
        },
        ALICE,
    )
    world.project(rename, *(vote(rename.id, "yes", T0 + 4 * DAY + 1, v) for v in (BOB, CAROL, DAVE)))
    world.project(finalize(rename.id, "accepted", (3, 0, 0), T0 + 4 * DAY + 2))
    survivor = graph.node(world.graph, target)
    assert survivor is not None
    assert survivor["altnames"] == ["Ritchie"]
    assert [hit["id"] for hit in graph.search(world.graph, "ritchie")] == [target]
