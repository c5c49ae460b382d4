"""The signed examples are one story the music graph accepts: replayed in log order into a fresh
projection with the setting docs/events.md states, no event is refused, and the story's ends
are visible in the graph."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from stave import graph
from stave.event import Event, admit
from stave.graph.ids import derived_id
from stave.graph.rules import Rules
from tests.graph.world import EXAMPLES, World


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKE = _generator()
RINGO = MAKE._id("person", "Ringo Starr")
STARKEY = MAKE._id("person", "Richard Starkey")
CLAPTON = MAKE._id("person", "Eric Clapton")


def _story() -> list[Event]:
    return [admit(line.encode()) for line in EXAMPLES.joinpath("all.jsonl").read_text().splitlines()]


def _by_name(name: str) -> Event:
    return admit(EXAMPLES.joinpath(name).read_bytes())


def _world(tmp_path: Path, rules: Rules) -> World:
    return World(tmp_path / "story", rules=rules)


def _documented_rules() -> Rules:
    return Rules(reward_distributors=frozenset(MAKE.DISTRIBUTOR_SETTING["reward_distributors"]))


def test_the_files_are_the_story_in_log_order() -> None:
    files = sorted(path.name for path in EXAMPLES.glob("[0-9]*.json"))
    assert [_by_name(name).id for name in files] == [event.id for event in _story()]


def test_the_story_replays_with_no_refusal(tmp_path: Path) -> None:
    world = _world(tmp_path, _documented_rules())
    try:
        events = _story()
        merged = next(i for i, e in enumerate(events) if e.id == _by_name("14d_finalize.merge.json").id)
        world.project(*events[: merged + 1])
        middle = graph.node(world.graph, STARKEY)
        assert middle is not None
        assert middle["id"] == RINGO  # the merge stands: the duplicate resolves to Ringo Starr
        world.project(*events[merged + 1 :])
        assert world.projector.position()[0] == len(events) - 1
        assert graph.rejections(world.graph) == []

        claim = _by_name("04_add_claim.json")
        statuses = {c["claim_id"]: c["status"] for c in graph.claims(world.graph, None)}
        assert statuses == {
            claim.id: "accepted",
            _by_name("06_add_claim.withdrawn.json").id: "withdrawn",
            _by_name("14_merge_node.json").id: "accepted",
            _by_name("15_split_node.json").id: "accepted",
        }
        accepted = next(c for c in graph.claims(world.graph, "accepted") if c["claim_id"] == claim.id)
        assert accepted["votes"] == {"yes": 3, "no": 0, "abstain": 0}

        # the accepted claim's change is in the graph: Clapton is a guest on the track
        release = graph.release(
            world.graph,
            derived_id("release", _by_name("00_create_release_bundle.white_album.json").id, "$.body.release"),
        )
        assert release is not None
        [track] = [t for t in release["tracklist"] if t["id"] == claim.body["subject"]["id"]]
        guests = [(c["person"]["id"], c["roles"]) for c in track["credits"] if c["as"] == "guest"]
        assert guests == [(CLAPTON, ["Lead Guitar"])]

        # the split undid the merge: each person is its own node again
        starkey = graph.node(world.graph, STARKEY)
        ringo = graph.node(world.graph, RINGO)
        assert starkey is not None
        assert ringo is not None
        assert (starkey["id"], starkey["name"], starkey["merged"]) == (STARKEY, "Richard Starkey", [])
        assert (ringo["id"], ringo["merged"]) == (RINGO, [])

        author = claim.value["author_pubkey"]
        assert graph.reward_totals(world.graph) == [
            {"recipient": author, "unit": "points", "total": 100, "distributions": 1}
        ]
    finally:
        world.close()


def test_with_the_default_rules_only_the_distribution_is_refused(tmp_path: Path) -> None:
    world = _world(tmp_path, Rules())
    try:
        world.project(*_story())
        refusals = [(r["event_id"], r["rule"]) for r in graph.rejections(world.graph)]
        assert refusals == [(_by_name("13_distribute_rewards.json").id, "distributor-not-allowed")]
        assert graph.reward_totals(world.graph) == []
    finally:
        world.close()
