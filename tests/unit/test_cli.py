"""The CLI, run as a real process (the way users run it)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stave.event import PrivateKey, admit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def stave(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "stave.cli", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    result = stave("key", "new", "--out", str(tmp_path / "me.key"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "me.key"


def test_key_new_writes_0600_and_prints_public(key_file: Path, tmp_path: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = PrivateKey.from_string(key_file.read_text())
    pub = stave("key", "pub", "--key-file", str(key_file))
    assert pub.stdout.decode().strip() == key.public_key.to_string()
    legacy = stave("key", "pub", "--key-file", str(key_file), "--legacy")
    assert legacy.stdout.decode().strip() == key.public_key.to_legacy_string()
    again = stave("key", "new", "--out", str(key_file))
    assert again.returncode == 2
    assert b"exists" in again.stderr


def test_key_new_prints_both_without_out() -> None:
    lines = stave("key", "new").stdout.decode().split()
    assert PrivateKey.from_string(lines[0]).public_key.to_string() == lines[1]


def test_sign_hash_verify_round_trip(key_file: Path, tmp_path: Path) -> None:
    template = json.loads((EXAMPLES / "08_vote.json").read_text())
    del template["sig"], template["author_pubkey"]
    (tmp_path / "t.json").write_text(json.dumps(template, indent=2))
    signed = stave("event", "sign", "--key-file", str(key_file), str(tmp_path / "t.json"))
    assert signed.returncode == 0, signed.stderr
    event = admit(signed.stdout)
    (tmp_path / "s.json").write_bytes(signed.stdout)
    assert stave("event", "hash", str(tmp_path / "s.json")).stdout.decode().strip() == event.id
    assert stave("event", "hash", str(tmp_path / "t.json")).stdout.decode().strip() != event.id  # author was added
    verified = stave("event", "verify", str(tmp_path / "s.json"))
    assert verified.returncode == 0
    assert verified.stdout.decode().strip() == f"ok {event.id}"
    canonical = stave("event", "canonical", "-", stdin=signed.stdout)
    assert canonical.stdout.rstrip(b"\n") == event.unsigned_bytes


def test_verify_reports_each_line_and_exits_1(tmp_path: Path) -> None:
    lines = (EXAMPLES / "all.jsonl").read_bytes().splitlines()
    tampered = lines[8].replace(b'"yes"', b'"no"')
    mixed = b"\n".join([lines[1], tampered, b'{"broken": ', lines[2]]) + b"\n"
    result = stave("event", "verify", "-", stdin=mixed)
    assert result.returncode == 1
    out = result.stdout.decode().splitlines()
    assert out[0] == f"ok {admit(lines[1]).id}"
    assert out[1].startswith("invalid ")
    assert "signature does not match" in out[1]
    assert out[2].startswith("invalid <stdin>:3: ")
    assert out[3].startswith("ok ")


def test_verify_all_examples() -> None:
    result = stave("event", "verify", str(EXAMPLES / "all.jsonl"), *map(str, sorted(EXAMPLES.glob("[0-9]*.json"))))
    assert result.returncode == 0, result.stdout
    assert len(result.stdout.splitlines()) == 54


def test_validate_names_the_path(tmp_path: Path) -> None:
    event = json.loads((EXAMPLES / "08_vote.json").read_text())
    event["body"]["vote"] = "maybe"
    (tmp_path / "bad.json").write_text(json.dumps(event))
    result = stave("event", "validate", str(tmp_path / "bad.json"))
    assert result.returncode == 1
    assert "$.body.vote" in result.stdout.decode()


def test_json_canonical() -> None:
    result = stave("json", "canonical", "-", stdin='{"b": [1.0, 1e21, "é"], "a": null}'.encode())
    assert result.stdout == '{"a":null,"b":[1,1e+21,"é"]}\n'.encode()
    bad = stave("json", "canonical", "-", stdin=b'{"a":1,"a":2}')
    assert bad.returncode == 1
    assert b"duplicate" in bad.stderr


def test_key_file_errors(tmp_path: Path) -> None:
    (tmp_path / "two.key").write_text("a\nb\n")
    result = stave("event", "sign", "--key-file", str(tmp_path / "two.key"), str(EXAMPLES / "08_vote.json"))
    assert result.returncode == 1
    assert b"exactly one key" in result.stderr
    missing = stave("key", "pub", "--key-file", str(tmp_path / "nope.key"))
    assert missing.returncode == 2
    assert b"cannot read" in missing.stderr


def test_data_dir_option_env_and_config(tmp_path: Path) -> None:
    by_option = stave("--data-dir", str(tmp_path / "a"), "demo")
    assert by_option.returncode == 0, by_option.stderr
    assert (tmp_path / "a" / "demo" / "white_album.signed.json").is_file()
    by_env = stave("demo", env={"STAVE_DATA_DIR": str(tmp_path / "b")})
    assert (tmp_path / "b" / "demo" / "demo.key").is_file(), by_env.stderr
    (tmp_path / "stave.toml").write_text(f'data_dir = "{tmp_path / "c"}"\n')
    stave("demo", cwd=tmp_path)
    assert (tmp_path / "c" / "demo").is_dir()
    (tmp_path / "bad.toml").write_text("[event]\nmax_bites = 3\n")
    bad = stave("--config", str(tmp_path / "bad.toml"), "demo")
    assert bad.returncode == 2
    assert b"max_bites" in bad.stderr


def test_demo_shows_the_tampered_copy_rejected(tmp_path: Path) -> None:
    result = stave("--data-dir", str(tmp_path), "demo")
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "verified" in out
    assert "rejected" in out
    signed = (tmp_path / "demo" / "white_album.signed.json").read_bytes()
    assert admit(signed).id in out


def test_help_lists_the_commands() -> None:
    out = stave("--help").stdout.decode()
    for command in ("key", "json", "event", "demo"):
        assert command in out
