"""Plots of the latest results (matplotlib, Agg, PNG into ``bench/results/``).

- ``throughput_vs_concurrency.png``: events/s at 1, 4, 16 and 32 clients, stave one event per
  request, stave 100 per request and the peer ``nostr-relay`` (``peer.json``);
- ``latency_percentiles.png``: p50, p90 and p99 per subject and concurrency (``peer.json``);
- ``scaling.png``: ingest events/s and the server's peak RSS against the events in the log,
  embedded and on PostgreSQL (``scaling.json``), with the 512 MiB limit;

and the table of every record of ``summary.json`` in ``docs/performance.md`` (between its
``summary:start``/``summary:end`` markers), with the machine it ran on.

Drawn from the JSON results alone, so ``python -m bench plots`` redraws them without measuring.
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
from rich.console import Console

from bench.harness import RESULTS, SUMMARY, Record

PERFORMANCE_DOC = RESULTS.parent.parent / "docs" / "performance.md"
_SECTION = re.compile(r"(<!-- summary:start -->\n).*?(<!-- summary:end -->)", re.DOTALL)
_LIMITS_SECTION = re.compile(r"(<!-- limits:start -->\n).*?(<!-- limits:end -->)", re.DOTALL)

SUBJECTS = {
    "single": "stave POST /events",
    "peer": "nostr-relay, one EVENT at a time",
    "batch": "stave POST /events:batch (100)",
    "peer_stream": "nostr-relay, 100 EVENTs in flight",
}


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def throughput_vs_concurrency(peer: dict[str, Any], path: Path) -> Path:
    figures = peer["figures"]
    clients = figures["clients"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for subject, label in SUBJECTS.items():
        if f"{subject}_{clients[0]}" not in figures["phases"]:
            continue  # results from before that subject was measured
        values = [figures["phases"][f"{subject}_{count}"]["events_per_s"] for count in clients]
        ax.plot(clients, values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(clients, [str(count) for count in clients])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent clients (closed loop)")
    ax.set_ylabel("events/s (best round)")
    ax.set_title(f"ingest against concurrency ({figures['events_per_run']:,} events per run, {peer['measured_at']})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_percentiles(peer: dict[str, Any], path: Path) -> Path:
    figures = peer["figures"]
    clients = figures["clients"]
    subjects = {subject: label for subject, label in SUBJECTS.items() if f"{subject}_{clients[0]}" in figures["phases"]}
    fig, axes = plt.subplots(1, len(subjects), figsize=(4 * len(subjects), 4.2), sharey=True)
    width = 0.27
    for ax, (subject, label) in zip(axes, subjects.items(), strict=True):
        for offset, percentile in enumerate(("p50_ms", "p90_ms", "p99_ms")):
            values = [figures["phases"][f"{subject}_{count}"][percentile] for count in clients]
            ax.bar([i + (offset - 1) * width for i in range(len(clients))], values, width, label=percentile[:3])
        ax.set_xticks(range(len(clients)), [str(count) for count in clients])
        ax.set_xlabel("clients")
        ax.set_title(label, fontsize=10)
        ax.set_yscale("log")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("latency per request (peer: per event), ms")
    axes[0].legend()
    fig.suptitle(f"latency percentiles per phase ({peer['measured_at']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scaling(results: dict[str, Any], path: Path) -> Path:
    figures = results["figures"]
    fig, (rate, memory) = plt.subplots(1, 2, figsize=(12, 4.5))
    for backend in figures["backends"]:
        points = [p for p in figures["points"] if p["backend"] == backend]
        sizes = [p["log_size"] for p in points]
        rate.plot(sizes, [p["single"]["events_per_s"] for p in points], marker="o", label=f"{backend}: one per request")
        rate.plot(sizes, [p["batch"]["events_per_s"] for p in points], marker="s", label=f"{backend}: 100 per request")
        memory.plot(sizes, [p["rss_peak_mib"] for p in points], marker="o", label=f"{backend}: peak RSS")
    memory.axhline(512, color="red", linestyle="--", label="512 MiB limit")
    for ax in (rate, memory):
        ax.set_xscale("log")
        ax.set_xlabel("events in the log before the round")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    rate.set_ylabel("events/s")
    rate.set_ylim(bottom=0)
    rate.set_title("ingest against the log's size")
    memory.set_ylabel("server RSS, MiB")
    memory.set_ylim(bottom=0)
    memory.set_title("server memory against the log's size")
    fig.suptitle(f"scaling ({results['measured_at']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} × {model}, {memory:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def summary_table(records: list[dict[str, Any]]) -> str:
    """The records of ``summary.json`` as a Markdown table."""
    lines = [
        "| record | goal | value | baseline | baseline value | ratio | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for record in records:
        baseline = (record["baseline"] or "-").replace("|", "/")
        met = "yes" if record["met"] else "**no**"
        lines.append(
            f"| `{record['name']}` | {record['goal']} | {_number(record['value'])} {record['unit']} | {baseline} | "
            f"{_number(record['baseline_value'])} | {_number(record['ratio'])} | {met} |"
        )
    return "\n".join(lines)


def limits_table(limits: dict[str, Any]) -> str:
    """The stave figures beside the limits that bound them (``limits.json``), as a Markdown table."""
    lines = ["| stave figure (benchmark) | value | bounded by | limit | share |", "| --- | --- | --- | --- | --- |"]
    for item in limits["figures"]["pairs"]:
        lines.append(
            f"| {item['figure']} (`{item['from']}`) | {_number(item['value'])} {item['unit']} | {item['limit']} | "
            f"{_number(item['limit_value'])} {item.get('limit_unit', item['unit'])} | {item['share']:.2f} |"
        )
    return "\n".join(lines)


def update_doc(doc: Path = PERFORMANCE_DOC) -> bool:
    """Rewrite the generated sections of the performance doc from the results; False if it has none."""
    if not doc.exists() or not SUMMARY.exists():
        return False
    text = doc.read_text()
    if not _SECTION.search(text):
        return False
    table = summary_table(json.loads(SUMMARY.read_text()))
    body = f"Machine: {_machine()}; the machine is shared, so figures vary from run to run.\n\n{table}\n"
    text = _SECTION.sub(lambda match: match.group(1) + body + match.group(2), text, count=1)
    limits = _load("limits")
    if limits is not None:
        pairs = f"Measured {limits['measured_at']}.\n\n{limits_table(limits)}\n"
        text = _LIMITS_SECTION.sub(lambda match: match.group(1) + pairs + match.group(2), text, count=1)
    doc.write_text(text)
    return True


def run(console: Console) -> list[Record]:
    drawn: list[Path] = []
    peer = _load("peer")
    if peer is not None:
        drawn.append(throughput_vs_concurrency(peer, RESULTS / "throughput_vs_concurrency.png"))
        drawn.append(latency_percentiles(peer, RESULTS / "latency_percentiles.png"))
    results = _load("scaling")
    if results is not None:
        drawn.append(scaling(results, RESULTS / "scaling.png"))
    console.print(
        "plots: "
        + (", ".join(str(path.relative_to(RESULTS.parent.parent)) for path in drawn) or "none (no results yet)")
    )
    if update_doc():
        console.print(f"summary table written to {PERFORMANCE_DOC.relative_to(RESULTS.parent.parent)}")
    return []
