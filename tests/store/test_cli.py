"""``stave store`` end to end, as a real process."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.unit.test_cli import EXAMPLES, stave

ENV = {"STAVE_STORE_ARCHIVE": "memory://archive"}  # the CAR archive has its own tests


def test_put_get_health_scrub(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    put = stave("--data-dir", data_dir, "store", "put", str(EXAMPLES / "all.jsonl"), env=ENV)
    assert put.returncode == 0, put.stderr
    lines = put.stdout.decode().splitlines()
    assert len(lines) == 27
    assert all(line.startswith("stored ") for line in lines)
    event_id = lines[8].split()[1]
    again = stave("--data-dir", data_dir, "store", "put", str(EXAMPLES / "08_vote.json"), env=ENV)
    assert again.stdout.decode().strip() == f"duplicate {event_id}"

    got = stave("--data-dir", data_dir, "store", "get", event_id, lines[0].split()[1], env=ENV)
    assert got.returncode == 0
    assert len(got.stdout.splitlines()) == 2
    assert json.loads(got.stdout.splitlines()[0])["type"] == "VOTE"

    missing = stave("--data-dir", data_dir, "store", "get", "ab" * 32, env=ENV)
    assert missing.returncode == 1
    assert b"not stored" in missing.stderr

    health = stave("--data-dir", data_dir, "store", "health", "--json", env=ENV)
    report = json.loads(health.stdout)
    assert report["ok"]
    assert report["durable_up"] == 2

    # The default store directories keep their events in SQLite: damage one copy there.
    database = tmp_path / "store" / "b" / "events.sqlite3"

    def copy_in_b() -> bytes:
        with sqlite3.connect(database) as db:
            (data,) = db.execute("SELECT data FROM events WHERE id = ?", (bytes.fromhex(event_id),)).fetchone()
        db.close()
        return bytes(data)

    with sqlite3.connect(database) as db:
        db.execute("UPDATE events SET data = ? WHERE id = ?", (b"{}", bytes.fromhex(event_id)))
    db.close()
    assert copy_in_b() == b"{}"
    scrub = stave("--data-dir", data_dir, "store", "scrub", env=ENV)
    assert scrub.returncode == 0
    assert "repaired" in scrub.stdout.decode()
    assert json.loads(copy_in_b())["type"] == "VOTE"


def test_put_reports_invalid_and_quorum_failures(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    vote = (EXAMPLES / "08_vote.json").read_text()
    bad.write_text(json.dumps(json.loads(vote)) + "\n" + vote.replace('"yes"', '"no"').replace("\n", "") + "\n")
    result = stave("--data-dir", str(tmp_path), "store", "put", str(bad), env=ENV)
    assert result.returncode == 1
    out = result.stdout.decode().splitlines()
    assert out[0].startswith("invalid ")
    assert "signature does not match" in out[0]
    assert out[1].startswith("stored ")

    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    quorum = stave(
        "--data-dir",
        str(tmp_path),
        "store",
        "--store",
        f"file://{tmp_path}/ok",
        "--store",
        f"file://{blocked}",
        "put",
        str(EXAMPLES / "09_like.json"),
        env=ENV,
    )
    assert quorum.returncode == 1
    assert "failed" in quorum.stdout.decode()
    assert "only 1 of the 2" in quorum.stdout.decode()


def test_min_redundancy_above_backends_is_a_usage_error(tmp_path: Path) -> None:
    result = stave("--data-dir", str(tmp_path), "store", "--min-redundancy", "3", "health", env=ENV)
    assert result.returncode == 2
    assert b"min-redundancy" in result.stderr
