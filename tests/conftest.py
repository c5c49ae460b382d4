"""Shared fixtures. Unit tests need no network; tests needing a real server carry its marker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.servers.fixtures"]

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def eosjs_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "eosjs" / "vectors.json").read_text(encoding="utf-8"))
    return data
