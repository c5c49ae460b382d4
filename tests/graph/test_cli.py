"""``stave project`` and ``stave query`` as real processes on a real data dir."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.graph.test_projection import BEATLES, EMI, PAUL, RINGO
from tests.unit.test_cli import EXAMPLES, stave


def _json(*args: str) -> Any:
    result = stave(*args, "--json")
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = str(tmp_path_factory.mktemp("graph-cli"))
    added = stave("--data-dir", data, "log", "add", str(EXAMPLES / "all.jsonl"))
    assert added.returncode == 0, added.stderr
    return data


def test_project_digest_rebuild_and_reconcile(data: str) -> None:
    digest = stave("--data-dir", data, "project", "digest")  # catches up with the log first
    assert digest.returncode == 0, digest.stderr
    first = digest.stdout.decode().strip()
    assert len(first) == 64
    assert int(first, 16) >= 0
    rebuilt = stave("--data-dir", data, "project", "rebuild", "graph")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.decode().strip() == f"rebuilt graph: 27 entries, digest {first}"
    tables = stave("--data-dir", data, "project", "digest", "--tables").stdout.decode().splitlines()
    assert tables[0] == first
    assert any(line.startswith("graph_nodes ") for line in tables[1:])
    reconciled = stave("--data-dir", data, "project", "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout
    assert "equals a fresh rebuild" in reconciled.stdout.decode()
    unknown = stave("--data-dir", data, "project", "rebuild", "marketplace")
    assert unknown.returncode == 2
    assert "unknown projection 'marketplace'" in unknown.stderr.decode()


def test_reconcile_exits_1_and_names_the_table_that_differs(tmp_path: Path) -> None:
    data = str(tmp_path)
    assert stave("--data-dir", data, "log", "add", str(EXAMPLES / "all.jsonl")).returncode == 0
    assert stave("--data-dir", data, "project", "digest").returncode == 0
    with sqlite3.connect(tmp_path / "graph.db") as connection:
        connection.execute("UPDATE graph_nodes SET name = 'Paul Ramon' WHERE id = ?", (PAUL,))
    reconciled = stave("--data-dir", data, "project", "reconcile")
    assert reconciled.returncode == 1
    out = reconciled.stdout.decode()
    assert "graph_nodes: 1 rows only in the live projection, 1 only in the rebuild" in out
    assert "Paul Ramon" in out


def test_queries(data: str) -> None:
    hits = _json("--data-dir", data, "query", "search", "Fab Four")
    assert [hit["id"] for hit in hits] == [BEATLES]
    release_id = next(h["id"] for h in _json("--data-dir", data, "query", "search", "white album"))
    release = _json("--data-dir", data, "query", "release", release_id)
    assert release["name"] == "The Beatles"
    assert len(release["tracklist"]) == 30
    discography = _json("--data-dir", data, "query", "discography", PAUL)
    assert [r["id"] for r in discography["releases"]] == [release_id]
    label = _json("--data-dir", data, "query", "label", EMI)
    assert [r["id"] for r in label["releases"]] == [release_id]
    members = _json("--data-dir", data, "query", "members", BEATLES, "--at", "1962-08-18")
    assert RINGO in {m["id"] for m in members["members"]}
    collaborators = _json("--data-dir", data, "query", "collaborators", PAUL, "--depth", "1")
    assert {c["hops"] for c in collaborators["collaborators"]} == {1}
    claims = _json("--data-dir", data, "query", "claims", "--status", "all")
    assert {(c["kind"], c["status"]) for c in claims} == {
        ("claim", "accepted"),
        ("claim", "withdrawn"),
        ("merge", "accepted"),
        ("split", "accepted"),
    }
    refused = _json("--data-dir", data, "query", "rejections")
    assert "distributor-not-allowed" in {r["rule"] for r in refused}  # the example's rewards: nobody may pay
    assert _json("--data-dir", data, "query", "rewards") == []
    history = _json("--data-dir", data, "query", "history", RINGO)
    assert [h["type"] for h in history][:2] == ["CREATE_RELEASE_BUNDLE", "ADD_MEMBER"]
    assert history[0]["proof"] == f"/events/{history[0]['event_id']}/proof"


def test_readable_output_and_errors(data: str) -> None:
    table = stave("--data-dir", data, "query", "members", BEATLES)
    assert table.returncode == 0
    assert "Paul McCartney" in table.stdout.decode()
    missing = stave("--data-dir", data, "query", "release", "no-such-release")
    assert missing.returncode == 1
    assert "no release with id no-such-release" in missing.stderr.decode()
    bad = stave("--data-dir", data, "query", "claims", "--status", "maybe")
    assert bad.returncode == 2
    assert "--status must be" in bad.stderr.decode()


def test_project_follow_runs_until_stopped_and_keeps_up_with_the_log(tmp_path: Path) -> None:
    """The follower as its own process: it applies what the log holds, then what is added, and
    stops cleanly on SIGTERM, its cursor committed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data = str(tmp_path)
    lines = (EXAMPLES / "all.jsonl").read_text().splitlines()
    (tmp_path / "first.jsonl").write_text("\n".join(lines[:5]) + "\n")
    (tmp_path / "rest.jsonl").write_text("\n".join(lines[5:]) + "\n")
    assert stave("--data-dir", data, "log", "add", str(tmp_path / "first.jsonl")).returncode == 0
    follower = subprocess.Popen(
        [sys.executable, "-m", "stave.cli", "--data-dir", data, "project", "follow", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:

        def cursor() -> int:
            try:
                with sqlite3.connect(tmp_path / "graph.db") as connection:
                    row = connection.execute("SELECT seq FROM graph_cursor WHERE name = 'graph'").fetchone()
                    return -1 if row is None else int(row[0])
            except sqlite3.OperationalError:  # not created yet
                return -1

        deadline = time.monotonic() + 60
        while cursor() != 4:
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else b""
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert stave("--data-dir", data, "log", "add", str(tmp_path / "rest.jsonl")).returncode == 0
        while cursor() != len(lines) - 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        os.killpg(follower.pid, signal.SIGTERM)
        out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err.decode()
    assert out.decode().strip() == f"stopped at seq {len(lines) - 1}"
    assert "applied 5 entries, at seq 4" in err.decode()
    # What it built is what a rebuild builds.
    reconciled = stave("--data-dir", data, "project", "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout
    bad = stave("--data-dir", data, "project", "follow", "--interval", "0")
    assert bad.returncode == 2
    assert "--interval must be more than 0" in bad.stderr.decode()
