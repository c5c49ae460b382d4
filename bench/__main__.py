"""``python -m bench [NAME…]``: run the benchmarks (all by default) and update the summary."""

from __future__ import annotations

import importlib
import sys

from rich.console import Console

# limits reads the others' latest results, and plots draws them: both run last.
BENCHMARKS = ["event_core", "store", "log", "server", "graph", "peer", "scaling", "limits", "plots"]


def main(argv: list[str]) -> int:
    console = Console()
    names = argv or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        console.print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    missed = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        records = module.run(console)
        missed += [record.name for record in records if not record.met]
    if missed:
        console.print(f"[yellow]goals not met:[/yellow] {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
