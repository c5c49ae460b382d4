"""The shared benchmark harness: timing, baselines measured in the same run, and the summary.

Every figure that an issue sets a goal for becomes one record in ``bench/results/summary.json``
(upserted by ``name``): ``{name, value, unit, baseline, baseline_value, ratio, goal, met}`` with
``ratio = value / baseline_value``; a goal without a baseline leaves those two null. Timings
interleave subject and baseline over many short rounds, so a noisy moment on a shared machine
hits both alike, and keep each one's fastest round: the cost of the work itself, with the least
interference (the estimator ``timeit`` recommends); the medians are kept in the results too.
"""

from __future__ import annotations

import json
import operator
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"
SUMMARY = RESULTS / "summary.json"

_COMPARATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Record:
    name: str
    value: float
    unit: str
    baseline: str | None
    baseline_value: float | None
    ratio: float | None
    goal: str
    met: bool


def goal_record(
    name: str,
    value: float,
    unit: str,
    goal: str,
    baseline: str | None = None,
    baseline_value: float | None = None,
) -> Record:
    """Build a record; ``goal`` such as ``"<=1.5"`` applies to the ratio when there is a baseline."""
    ratio = value / baseline_value if baseline_value else None
    op = next(symbol for symbol in ("<=", ">=", "<", ">") if goal.startswith(symbol))
    target = float(goal[len(op) :])
    subject = ratio if ratio is not None else value
    return Record(
        name=name,
        value=round(value, 6),
        unit=unit,
        baseline=baseline,
        baseline_value=None if baseline_value is None else round(baseline_value, 6),
        ratio=None if ratio is None else round(ratio, 4),
        goal=goal,
        met=bool(_COMPARATORS[op](subject, target)),
    )


def time_per_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` over ``number`` calls."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def calibrate(fn: Callable[[], object], target_seconds: float = 0.05) -> int:
    """A call count that takes about ``target_seconds``."""
    number = 1
    while True:
        if time_per_call(fn, number) * number >= target_seconds / 4:
            return max(1, int(number * target_seconds / max(time_per_call(fn, number) * number, 1e-9)))
        number *= 4


def compare(
    subjects: dict[str, Callable[[], object]], rounds: int = 41, target_seconds: float = 0.02
) -> dict[str, tuple[float, float]]:
    """(fastest, median) seconds per call of each function, measured interleaved over ``rounds``."""
    numbers = {name: calibrate(fn, target_seconds) for name, fn in subjects.items()}
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(rounds):
        for name, fn in subjects.items():
            samples[name].append(time_per_call(fn, numbers[name]))
    return {name: (min(values), statistics.median(values)) for name, values in samples.items()}


def upsert_summary(records: list[Record], path: Path = SUMMARY) -> None:
    """Replace the records with the same names in the summary, keep the others."""
    existing: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    names = {record.name for record in records}
    merged = [item for item in existing if item["name"] not in names] + [asdict(record) for record in records]
    merged.sort(key=lambda item: item["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """The full figures of one benchmark, with the machine they were measured on."""
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "figures": figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_records(title: str, records: list[Record], console: Console | None = None) -> None:
    table = Table(title=title)
    for column in ("goal record", "value", "baseline", "ratio", "goal", "met"):
        table.add_column(column)
    for record in records:
        baseline = f"{record.baseline} = {record.baseline_value:g} {record.unit}" if record.baseline else "-"
        table.add_row(
            record.name,
            f"{record.value:g} {record.unit}",
            baseline,
            "-" if record.ratio is None else f"{record.ratio:.2f}x",
            record.goal,
            "[green]yes[/green]" if record.met else "[red]no[/red]",
        )
    (console or Console()).print(table)
