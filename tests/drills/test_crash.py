"""Crash drill: SIGKILL the server at random moments during load, restart it, check every invariant.

32 clients keep submitting while the server is killed (no shutdown, no flush) and restarted on
the same port and data; a client whose request died mid-flight, or that could not connect,
submits the same event again once the server is back (a stored one comes back as a duplicate
with its original seq). Afterwards: every acknowledged event at its acknowledged seq, served
verified, provable; nothing in the log that no client had in flight; ``stave log verify`` and
``stave store scrub`` clean.

The sequencer itself is SIGKILLed by tests/log/test_crash.py (short, in ``make test``); the
``drill`` version here runs the same crash loop with many more kills.

The kill moments come from ``STAVE_DRILL_SEED`` (a fixed default); where a kill lands among the
server's statements still depends on timing, run to run.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from stave.db import open_database
from stave.log.sequencer import Log
from tests.drills.toolkit import Load, check_invariants, drill_server, new_database, record, signed_events
from tests.log.sequencer_worker import SIGNER
from tests.log.test_crash import SEED, check_log, crash_loop
from tests.servers import PostgresServer

DRILL_SEED = int(os.environ.get("STAVE_DRILL_SEED", "20261206"))


def server_crash_drill(tmp_path: Path, name: str, count: int, kills: int, seconds: float) -> None:
    rng = random.Random(DRILL_SEED)
    server = drill_server(tmp_path / "data").start()
    restarts: list[float] = []
    try:
        load = Load(server.url, signed_events(2_000_000, count), clients=32, seconds=seconds, retry=True).start()
        for _ in range(kills):
            # Somewhere in the stream of acknowledgements: after a few more, then a random moment later.
            load.wait_for_acks(load.acknowledged_count() + rng.randint(10, 60))
            time.sleep(rng.uniform(0.0, 0.5))
            server.kill()
            began = time.monotonic()
            server.start()
            restarts.append(time.monotonic() - began)
        outcome = load.join()
        statuses = outcome.statuses()
        # What the clients saw: acknowledgements, connections refused or cut by the kills; never a 5xx.
        assert set(statuses) <= {201, 200, 0, -1}, statuses
        assert len(outcome.acknowledged) == count, f"not every event got through in {seconds} s: {outcome.figures()}"
        checked = check_invariants(server, outcome, allowed_orphans=len(outcome.unanswered))
    finally:
        server.stop()
    figures = {
        **outcome.figures(),
        **checked.figures(),
        "kills": kills,
        "duplicates_after_retry": statuses.get(200, 0),
        "restart_seconds_max": round(max(restarts), 2),
        "seed": DRILL_SEED,
    }
    print(f"\n{name}: {figures}")
    record(name, figures)


def test_sigkilled_server_loses_no_acknowledged_event(tmp_path: Path) -> None:
    server_crash_drill(tmp_path, "crash-server-short", count=500, kills=3, seconds=60)


@pytest.mark.drill
@pytest.mark.timeout(1800)
def test_server_crash_drill(tmp_path: Path) -> None:
    server_crash_drill(tmp_path, "crash-server", count=6_000, kills=25, seconds=400)


def sequencer_drill(tmp_path: Path, name: str, url: str, streams: list[str], kills: int, extra: list[str]) -> None:
    began = time.monotonic()
    history = crash_loop(tmp_path, url, streams, kills_per_stream=kills, extra=extra)
    log = Log(open_database(url), SIGNER)
    try:
        unacknowledged = check_log(log, history, random.Random(SEED))
        figures = {
            "kills": history.kills,
            "killed_before_ready": history.killed_before_ready,
            "ids_acknowledged": len(history.seqs),
            "log_size": log.size(),
            "checkpoints": len(log.checkpoints()),
            "committed_unacknowledged_found_by_retry": history.found_unacknowledged,
            "unacknowledged_in_log": unacknowledged,
            "lost": 0,  # check_log asserts it
            "seconds": round(time.monotonic() - began, 1),
            "seed": SEED,
        }
    finally:
        log.database.close()
    print(f"\n{name}: {figures}")
    record(name, figures)


@pytest.mark.drill
@pytest.mark.timeout(1800)
def test_sequencer_crash_drill_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/stave.db"
    sequencer_drill(tmp_path, "crash-sequencer-sqlite", url, ["solo"], 60, ["--checkpoint", "0.05"])


@pytest.mark.drill
@pytest.mark.timeout(1800)
@pytest.mark.postgres
def test_sequencer_crash_drill_on_postgres(postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = new_database(postgres_server)
    extra = ["--checkpoint", "0.05", "--shared", "300"]
    sequencer_drill(tmp_path, "crash-sequencer-postgres", url, ["a", "b"], 40, extra)
