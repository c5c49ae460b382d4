"""Property tests: however the log is split into batches and however often the follower
restarts, the projection equals a rebuild from scratch (same digest)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stave import graph
from stave.graph.projector import Projector
from tests.graph.scenario import events
from tests.graph.world import World


def _fresh_digest(world: World, scratch: Path) -> str:
    database = graph.open_graph_database(f"sqlite:///{scratch}/fresh.db")
    try:
        Projector(database, world.log, world.store, world.rules).rebuild()
        return graph.state_digest(database).digest
    finally:
        database.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    appends=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6),
    batches=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=10),
    restarts=st.lists(st.booleans(), min_size=1, max_size=10),
)
def test_incremental_projection_equals_a_rebuild(appends: list[int], batches: list[int], restarts: list[bool]) -> None:
    log = list(events())
    with tempfile.TemporaryDirectory() as directory:
        world = World(Path(directory) / "node")
        try:
            projector = world.projector
            added, step = 0, 0
            for count in [*appends, len(log)]:  # append some, follow some, …; finally everything
                world.add(*log[added : added + count])
                added = min(len(log), added + count)
                while projector.position()[0] + 1 < added:
                    step += 1
                    if restarts[step % len(restarts)]:  # a new process picks up from the cursor
                        projector = Projector(world.graph, world.log, world.store, world.rules)
                    projector.batch_size = batches[step % len(batches)]
                    projector.catch_up(max_entries=projector.batch_size)
            assert projector.position()[0] == len(log) - 1
            incremental = graph.state_digest(world.graph).digest
            assert incremental == _fresh_digest(world, Path(directory))
        finally:
            world.close()


def test_the_scenario_exercises_governance() -> None:
    """The log the properties replay is not trivial: merges, splits, claims and refusals happen."""
    with tempfile.TemporaryDirectory() as directory:
        world = World(Path(directory) / "node")
        try:
            world.project(*events())
            statuses = {c["kind"]: c["status"] for c in graph.claims(world.graph, None, rules=world.rules)}
            assert statuses == {"claim": "accepted", "merge": "accepted", "split": "accepted"}
            label = graph.node(world.graph, "label-1")
            assert label is not None
            assert (label["name"], label["altnames"]) == ("Imprint One", ["Imprint Nº 1"])
            assert graph.node(world.graph, "starkey")["id"] == "starkey"  # type: ignore[index]  # split restored it
            rules = {r["rule"] for r in graph.rejections(world.graph)}
            assert {"premature", "not-open", "unknown-node", "kind-conflict"} <= rules
            band = graph.members(world.graph, "group-band", at="1983")
            assert band is not None
            assert {"keys", "bassist"} <= {m["id"] for m in band["members"]}
            band = graph.members(world.graph, "group-band", at="1995")
            assert band is not None
            assert not {"keys", "bassist"} & {m["id"] for m in band["members"]}
            parent = graph.label_releases(world.graph, "label-parent")
            assert parent is not None
            assert [s["id"] for s in parent["sub_labels"]] == ["label-1", "label-2"]
            assert len(parent["releases"]) == 2
        finally:
            world.close()
