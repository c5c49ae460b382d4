"""SIGKILL the projection mid-way, many times: every restart continues from the cursor and the
result equals a rebuild from scratch (nothing half applied, nothing applied twice)."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from stave import graph
from stave.event import Event
from stave.graph.projector import Projector
from tests.graph.scenario import events
from tests.graph.world import World, sign

ROOT = Path(__file__).resolve().parents[2]


def _filler(count: int) -> list[Event]:
    return [
        sign(
            "CREATE_RELEASE_BUNDLE",
            1_750_000_000 + i,
            {
                "release": {
                    "release_name": f"Filler {i}",
                    "tracks": [
                        {
                            "title": f"Filler {i}.{n}",
                            "songwriters": [{"person_id": f"writer-{i % 7}", "person_name": "W"}],
                        }
                        for n in range(4)
                    ],
                }
            },
        )
        for i in range(count)
    ]


@pytest.mark.slow
def test_a_killed_projection_restarts_where_it_was_and_equals_a_rebuild(tmp_path: Path) -> None:
    root = tmp_path / "node"
    world = World(root)
    try:
        log = list(events())
        world.add(*log[:20], *_filler(60), *log[20:])
        total = world.log.size()
        rng = random.Random(7)
        kills = 0
        for _ in range(12):
            worker = subprocess.Popen(
                [sys.executable, "-m", "tests.graph.crash_worker", str(root)],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            assert worker.stdout is not None
            lines = rng.randint(1, 6)
            finished = False
            for _ in range(lines):
                line = worker.stdout.readline().decode().strip()
                if line in ("done", ""):
                    finished = True
                    break
            worker.kill()  # SIGKILL, mid-batch or between batches
            worker.wait(timeout=30)
            worker.stdout.close()
            kills += 1
            if finished:
                break
        assert kills >= 3
        Projector(world.graph, world.log, world.store, world.rules).catch_up()
        assert world.projector.position()[0] == total - 1
        database = graph.open_graph_database(f"sqlite:///{tmp_path}/fresh.db")
        try:
            Projector(database, world.log, world.store, world.rules).rebuild()
            assert graph.state_digest(world.graph) == graph.state_digest(database)
        finally:
            database.close()
    finally:
        world.close()
