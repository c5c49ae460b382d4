from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.graph.world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    one = World(tmp_path / "node")
    yield one
    one.close()
