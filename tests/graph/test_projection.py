"""The projection follows a real log and store: the White Album becomes the expected graph
(checked by queries), the cursor moves with the writes, restarts apply nothing twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from stave import graph
from stave.errors import BackendUnavailable, BlobNotFound, StorageError
from stave.graph import tables
from stave.graph.ids import derived_id
from stave.graph.projector import Projector
from tests.graph.world import World, example, sign, white_album

BEATLES = "75755e8506a6ba7e82b34b902c904d7c5e66c9b4230eee44e84aea866e25c436"
PAUL = "f527fdc2c37e08d69249fed9f0d689a1fe6d99ccc03a48f5b9047be6f047fad6"
JOHN = "873ad138de7a08eb59e68b1f9b44b032a150e32c03628d024fea74d5c6d2e639"
RINGO = "41107af804231844b743eac7d10a9f9d9f8671ddc152899749ada80994a517cd"
PETE = "2efb3f0554b76300a01ab7854ba2780a3e2cd2e3bc0053d7ec06e487ee7750b0"
EMI = "7fd9b6fb79921e07962567cdb72add8b74241ef4374da92d6be47f760acfbbe1"
CAPITOL = "8d0206bfce3bdb156169892904eb05ada85484af3c68037f8e2d116f78fa6a4d"
GUITAR_WEEPS = "5dcef2251c0a5a30761fb4b812a1cf1e01a0aa3a6a5d8800507df2b44a32f7e6"


def _count(world: World, table: Any) -> int:
    with world.graph.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def white(world: World) -> World:
    world.project(white_album())
    return world


def test_the_white_album_projects_into_the_expected_graph(white: World) -> None:
    release_id = derived_id("release", white_album().id, "$.body.release")
    release = graph.release(white.graph, release_id)
    assert release is not None
    assert (release["name"], release["altnames"], release["date"]) == ("The Beatles", ["The White Album"], "1968-11-22")
    assert release["formats"] == ["LP"]
    assert release["master"] is True
    assert [label["name"] for label in release["labels"]] == ["Apple Records", "EMI Records", "Capitol Records"]
    tracklist = release["tracklist"]
    assert len(tracklist) == 30
    assert [(t["side"], t["number"], t["title"]) for t in tracklist[:2]] == [
        (1, 1, "Back in the U.S.S.R."),
        (1, 2, "Dear Prudence"),
    ]
    assert tracklist[-1]["title"] == "Good Night"
    assert (tracklist[-1]["side"], tracklist[-1]["number"]) == (4, 6)  # numbers count per side
    first = tracklist[0]
    songwriters = [(c["person"]["name"], c["roles"]) for c in first["credits"] if c["as"] == "songwriter"]
    assert songwriters == [("Paul McCartney", ["Lyrics", "Songwriter"]), ("John Lennon", ["Songwriter"])]
    assert [c["person"]["name"] for c in first["credits"] if c["as"] == "producer"] == ["George Martin"]
    assert [g["name"] for g in first["groups"]] == ["The Beatles"]
    paul_as_member = next(c for c in first["credits"] if c["as"] == "member" and c["person"]["id"] == PAUL)
    assert paul_as_member["group_id"] == BEATLES
    assert "Piano" in paul_as_member["roles"]
    assert first["listen_links"][0].startswith("https://open.spotify.com/")
    guests = {c["person"]["name"] for t in tracklist for c in t["credits"] if c["as"] == "guest"}
    assert {"Chris Thomas", "Henry Datyner"} <= guests


def test_discography_label_tree_members_collaborators_and_search(white: World) -> None:
    paul = graph.discography(white.graph, PAUL)
    assert paul is not None
    assert paul["name"] == "Paul McCartney"
    [release] = paul["releases"]
    assert release["name"] == "The Beatles"
    assert len(release["tracks"]) == 30
    assert "songwriter" in release["tracks"][0]["as"]
    assert [g["id"] for g in paul["groups"]] == [BEATLES]
    group = graph.discography(white.graph, BEATLES)
    assert group is not None
    assert len(group["releases"][0]["tracks"]) == 30

    emi = graph.label_releases(white.graph, EMI)
    assert emi is not None
    assert [(label["id"], label["depth"]) for label in emi["sub_labels"]] == [(CAPITOL, 1)]  # Capitol's parent is EMI
    assert [r["name"] for r in emi["releases"]] == ["The Beatles"]
    capitol = graph.label_releases(white.graph, CAPITOL)
    assert capitol is not None
    assert capitol["sub_labels"] == []

    members = graph.members(white.graph, BEATLES)
    assert members is not None
    assert {m["name"] for m in members["members"]} >= {"John Lennon", "Paul McCartney", "George Harrison"}

    collaborators = graph.collaborators(white.graph, PAUL, depth=1)
    assert collaborators is not None
    names = {c["name"] for c in collaborators["collaborators"]}
    assert {"John Lennon", "George Martin", "Chris Thomas"} <= names
    assert "Paul McCartney" not in names

    assert [hit["id"] for hit in graph.search(white.graph, "fab four")] == [BEATLES]
    assert graph.search(white.graph, "EMI GROUP")[0]["id"] == EMI
    assert graph.search(white.graph, "electric musical", kind="label")[0]["matched"] == [
        "Electric and Musical Industries"
    ]
    assert graph.search(white.graph, "mccartn", kind="person")[0]["id"] == PAUL  # a prefix
    assert graph.search(white.graph, "nobody called this") == []


def test_accents_and_case_do_not_matter_in_search(world: World) -> None:
    event = sign(
        "CREATE_GROUP",
        1_700_000_000,
        {"group": {"name": "Sigur Rós", "altnames": ["Sigur Ros"]}, "founding_members": []},
    )
    world.project(event)
    for query in ("sigur ros", "SIGUR RÓS", "sígur", "Rös"):
        assert [hit["name"] for hit in graph.search(world.graph, query)] == ["Sigur Rós"], query


def test_group_membership_over_time(world: World) -> None:
    world.project(white_album(), example("01_create_group"), example("02_add_member"), example("03_remove_member"))
    ringo_joined = graph.members(world.graph, BEATLES, at="1962-08-18")
    assert ringo_joined is not None
    ringo = next(m for m in ringo_joined["members"] if m["id"] == RINGO)
    assert [p["since"] for p in ringo["periods"]] == [None, "1962-08-18"]  # on the bundle (no dates), then ADD_MEMBER
    # Pete Best is known only from REMOVE_MEMBER: a member until 1962-08-16, not after
    at_15 = graph.members(world.graph, BEATLES, at="1962-08-15")
    at_17 = graph.members(world.graph, BEATLES, at="1962-08-17")
    assert at_15 is not None
    assert at_17 is not None
    assert PETE in {m["id"] for m in at_15["members"]}
    assert PETE not in {m["id"] for m in at_17["members"]}
    everyone = graph.members(world.graph, BEATLES)
    assert everyone is not None
    [pete] = [m for m in everyone["members"] if m["id"] == PETE]
    assert pete["periods"][0]["until"] == "1962-08-16"
    zeppelin = graph.search(world.graph, "led zeppelin", kind="group")[0]["id"]
    founders = graph.members(world.graph, zeppelin, at="1970")
    assert founders is not None
    assert [(m["name"], m["roles"]) for m in founders["members"]][:1] == [("Jimmy Page", ["guitarist"])]
    assert graph.members(world.graph, zeppelin, at="1967") == {**founders, "at": "1967", "members": []}


def test_the_cursor_moves_with_the_writes_and_a_restart_applies_nothing_twice(world: World) -> None:
    world.add(white_album(), example("01_create_group"))
    assert world.projector.catch_up() == 2
    assert world.projector.position() == (1, 1758390100)
    edges = _count(world, tables.edges)
    again = Projector(world.graph, world.log, world.store, world.rules)  # a restarted follower
    assert again.catch_up() == 0
    assert again.apply(world.log.entries(after_seq=-1, limit=10)) == 0  # entries it already has: skipped
    assert _count(world, tables.edges) == edges
    world.add(example("02_add_member"))
    assert again.catch_up() == 1
    assert again.position()[0] == 2


def test_log_time_is_the_running_maximum_of_created_at(world: World) -> None:
    late = sign("CREATE_GROUP", 2_000_000_000, {"group": {"name": "Later"}})
    backdated = sign("CREATE_GROUP", 1_000_000_000, {"group": {"name": "Earlier"}})
    world.project(late, backdated)
    assert world.projector.position() == (1, 2_000_000_000)  # the backdated event cannot move it back


class _LosingStore:
    """The real store, except that one event cannot be read (all its copies lost)."""

    def __init__(self, world: World, lost: str) -> None:
        self.world = world
        self.lost = lost

    def get_events(self, event_ids: Sequence[str]) -> Mapping[str, bytes | StorageError]:
        found = dict(self.world.store.get_events(event_ids))
        if self.lost in found:
            found[self.lost] = BlobNotFound(f"{self.lost} is not stored")
        return found


def test_a_batch_that_cannot_be_read_whole_applies_nothing_and_is_retried(world: World) -> None:
    first, second = white_album(), example("01_create_group")
    world.add(first, second)
    losing = Projector(world.graph, world.log, _LosingStore(world, second.id), world.rules)
    with pytest.raises(BackendUnavailable, match=second.id):
        losing.catch_up()
    assert losing.position() == (-1, 0)
    assert _count(world, tables.nodes) == 0  # the first event of the batch was not applied either
    assert world.projector.catch_up() == 2  # once the event can be read again, the batch applies


def test_a_handler_failing_midway_rolls_the_batch_back(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.add(white_album(), example("01_create_group"), example("02_add_member"))
    world.projector.batch_size = 10  # all four entries in one batch

    def boom(*_: Any) -> None:
        raise RuntimeError("crash in the middle of a batch")

    monkeypatch.setattr("stave.graph.projector._remove_member", boom)
    world.add(example("03_remove_member"))
    with pytest.raises(RuntimeError):
        world.projector.catch_up(max_entries=4)
    assert world.projector.position() == (-1, 0)
    assert _count(world, tables.edges) == 0
    assert _count(world, tables.touches) == 0
    monkeypatch.undo()
    assert world.projector.catch_up() == 4


def test_every_refused_event_is_recorded(world: World) -> None:
    vote = sign("VOTE", 1_700_000_000, {"claim_id": "ab" * 32, "vote": "yes"})
    world.project(vote)
    [refusal] = graph.rejections(world.graph)
    assert (refusal["event_id"], refusal["rule"], refusal["seq"]) == (vote.id, "unknown-claim", 0)


def test_rebuild_gives_the_same_digest_and_reconcile_finds_no_difference(white: World, tmp_path: Path) -> None:
    white.project(example("01_create_group"), example("02_add_member"))
    before = graph.state_digest(white.graph)
    assert before.tables["graph_nodes"][1] > 50
    assert white.projector.rebuild() == 3
    assert graph.state_digest(white.graph) == before
    assert graph.reconcile(white.projector, f"sqlite:///{tmp_path}/scratch.db") == []


def test_reconcile_reports_rows_only_one_side_has(white: World, tmp_path: Path) -> None:
    with white.graph.write() as connection:
        connection.execute(tables.nodes.update().where(tables.nodes.c.id == PAUL).values(name="Paul Ramon"))
        connection.execute(tables.likes.insert().values(target="ab" * 32, author="someone", event_id="cd" * 32, seq=0))
        connection.execute(tables.touches.delete().where(tables.touches.c.node_id == PAUL))
    differences = {d.table: d for d in graph.reconcile(white.projector, f"sqlite:///{tmp_path}/scratch.db")}
    assert set(differences) == {"graph_nodes", "graph_likes", "graph_touches"}
    assert (differences["graph_touches"].only_live, differences["graph_touches"].only_fresh) == (0, 2)
    assert all(PAUL in row for row in differences["graph_touches"].examples_fresh)
    assert (differences["graph_nodes"].only_live, differences["graph_nodes"].only_fresh) == (1, 1)
    assert "Paul Ramon" in differences["graph_nodes"].examples_live[0]
    assert "Paul McCartney" in differences["graph_nodes"].examples_fresh[0]
    assert (differences["graph_likes"].only_live, differences["graph_likes"].only_fresh) == (1, 0)


def test_a_node_named_with_another_kind_keeps_its_kind_and_the_conflict_is_recorded(world: World) -> None:
    first = sign("CREATE_GROUP", 1_700_000_000, {"group": {"group_id": "shared-id", "name": "A Group"}})
    second = sign(
        "ADD_MEMBER", 1_700_000_001, {"group_id": "g2", "member": {"person_id": "shared-id", "name": "Someone"}}
    )
    world.project(first, second)
    node = graph.node(world.graph, "shared-id")
    assert node is not None
    assert (node["kind"], node["name"]) == ("group", "A Group")
    [refusal] = graph.rejections(world.graph, second.id)
    assert refusal["rule"] == "kind-conflict"
    assert "is a group, not a person" in refusal["detail"]
