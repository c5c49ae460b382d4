"""The README's `stave --help` block is the real output (set STAVE_UPDATE_README=1 to refresh it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(<!-- stave-help:start -->\n)(.*?)(<!-- stave-help:end -->)", re.DOTALL)


def _help() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "stave.cli", "--help"],
        capture_output=True,
        env={**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"},
        check=True,
        timeout=60,
    )
    lines = [line.rstrip() for line in result.stdout.decode().strip("\n").splitlines()]
    return "```\n" + "\n".join(lines).strip("\n") + "\n```\n"


def test_readme_help_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    match = BLOCK.search(text)
    assert match is not None, "README.md lacks the stave-help markers"
    expected = _help()
    if os.environ.get("STAVE_UPDATE_README") == "1":
        README.write_text(BLOCK.sub(lambda m: m.group(1) + expected + m.group(3), text), encoding="utf-8")
        return
    assert match.group(2) == expected, (
        "README's help is stale: run STAVE_UPDATE_README=1 pytest tests/unit/test_readme.py"
    )


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:20])
    assert "make run" in head
    assert "make test" in head
