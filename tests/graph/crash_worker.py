"""Follows the log of a test World in small batches, printing the cursor after each: killed by the crash test."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.graph.world import World


def main() -> None:
    world = World(Path(sys.argv[1]))
    projector = world.projector
    projector.batch_size = 2
    while projector.catch_up(max_entries=2):
        print(projector.position()[0], flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
