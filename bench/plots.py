"""Plots of the latest results (matplotlib, Agg, PNG into ``bench/results/``).

- ``throughput_vs_concurrency.png``: events/s at 1, 4, 16 and 32 clients, stave one event per
  request, stave 100 per request and the peer ``nostr-relay`` (``peer.json``);
- ``latency_percentiles.png``: p50, p90 and p99 per subject and concurrency (``peer.json``);
- ``scaling.png``: ingest events/s and the server's peak RSS against the events in the log,
  embedded and on PostgreSQL (``scaling.json``), with the 512 MiB limit.

Drawn from the JSON results alone, so ``python -m bench plots`` redraws them without measuring.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only

import matplotlib.pyplot as plt
from rich.console import Console

from bench.harness import RESULTS, Record

SUBJECTS = {
    "single": "stave POST /events",
    "batch": "stave POST /events:batch (100)",
    "peer": "nostr-relay (WebSocket)",
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
    fig, axes = plt.subplots(1, len(SUBJECTS), figsize=(12, 4.2), sharey=True)
    width = 0.27
    for ax, (subject, label) in zip(axes, SUBJECTS.items(), strict=True):
        for offset, percentile in enumerate(("p50_ms", "p90_ms", "p99_ms")):
            values = [figures["phases"][f"{subject}_{count}"][percentile] for count in clients]
            ax.bar([i + (offset - 1) * width for i in range(len(clients))], values, width, label=percentile[:3])
        ax.set_xticks(range(len(clients)), [str(count) for count in clients])
        ax.set_xlabel("clients")
        ax.set_title(label, fontsize=10)
        ax.set_yscale("log")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    axes[0].set_ylabel("latency per request, ms")
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
    return []
