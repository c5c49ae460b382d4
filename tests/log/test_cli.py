"""``stave log``, ``stave proof``, ``stave verify-bundle`` and ``stave anchor`` as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import EXAMPLES, stave


def test_log_end_to_end(tmp_path: Path) -> None:
    data = str(tmp_path)
    added = stave("--data-dir", data, "log", "add", str(EXAMPLES / "all.jsonl"))
    assert added.returncode == 0, added.stderr
    lines = added.stdout.decode().split("\n")[:-1]
    assert [int(line.split()[0]) for line in lines] == list(range(27))
    vote_seq, vote_id = lines[8].split()
    again = stave("--data-dir", data, "log", "add", str(EXAMPLES / "08_vote.json"))
    assert again.stdout.decode().strip() == f"{vote_seq} {vote_id}"  # the original position

    checkpoint = stave("--data-dir", data, "log", "checkpoint").stdout.decode()
    assert checkpoint.splitlines()[:2] == ["stave.local/log", "27"]
    vkey = stave("--data-dir", data, "log", "vkey").stdout.decode().strip()
    assert vkey.startswith("stave.local/log+")

    inclusion = json.loads(stave("--data-dir", data, "log", "prove", "--inclusion", vote_id).stdout)
    assert (inclusion["log_index"], inclusion["tree_size"]) == (8, 27)
    consistency = json.loads(stave("--data-dir", data, "log", "prove", "--consistency", "3", "16").stdout)
    assert consistency["old_size"] == 3
    assert consistency["hashes"]

    anchored = stave("--data-dir", data, "anchor")
    assert anchored.returncode == 0
    assert "NOT a blockchain" in anchored.stdout.decode()

    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(stave("--data-dir", data, "proof", vote_id).stdout)
    verified = stave(
        "--data-dir",
        data,
        "verify-bundle",
        str(bundle),
        "--vkey",
        vkey,
        "--ledger",
        f"witness://{tmp_path}/anchor/witness.log",
    )
    assert verified.returncode == 0, verified.stdout
    out = verified.stdout.decode()
    assert "(1) ok event" in out
    assert "confirms it" in out

    tampered = json.loads(bundle.read_text())
    tampered["event"]["body"]["vote"] = "no"
    bundle.write_text(json.dumps(tampered))
    refused = stave("--data-dir", data, "verify-bundle", str(bundle))
    assert refused.returncode == 1
    assert refused.stdout.decode().startswith("FAILED (1)")

    verify = stave("--data-dir", data, "log", "verify")
    assert verify.returncode == 0
    assert "ok: 27 entries" in verify.stdout.decode()


def test_log_verify_reports_a_corrupted_node(tmp_path: Path) -> None:
    import sqlite3

    data = str(tmp_path)
    stave("--data-dir", data, "log", "add", str(EXAMPLES / "all.jsonl"))
    with sqlite3.connect(tmp_path / "stave.db") as connection:
        connection.execute("UPDATE log_nodes SET hash = zeroblob(32) WHERE node = 5")
    result = stave("--data-dir", data, "log", "verify")
    assert result.returncode == 1
    assert "level 0, index 5" in result.stdout.decode()


def test_unknown_event_and_bad_arguments(tmp_path: Path) -> None:
    data = str(tmp_path)
    missing = stave("--data-dir", data, "proof", "ab" * 32)
    assert missing.returncode in (1, 2)
    assert b"not in the log" in missing.stderr
    both = stave("--data-dir", data, "log", "prove")
    assert both.returncode == 2
