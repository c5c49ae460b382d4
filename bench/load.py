"""Load-generation pieces shared by the peer and scaling benchmarks, on top of ``bench/server.py``.

``bench/server.py`` has the closed-loop HTTP load generator (one thread and one keep-alive
connection per client, CPU of server and generator from /proc), the pre-signed votes and the
request signing; this module reuses them as they are and adds what a fixed-count run needs:
feeding exactly N events, in slices short enough that every request signature is still inside
the server's +-60 s window when it is sent, a sampler of the server's RSS, and percentiles.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.server.process import StaveServer

from bench.server import (
    BATCH,
    SERVER_ENV,
    Client,
    Events,
    Round,
    _cpu_seconds,
    _credentials,
    _drive,
    _ingest_commits,
    _plans,
    _rss_mb,
    _sign_in_parallel,
    _votes,
)

__all__ = [
    "BATCH",
    "SERVER_ENV",
    "Client",
    "Events",
    "Measured",
    "RssSampler",
    "by_thread",
    "cpu_seconds",
    "credentials",
    "feed_stave",
    "percentiles",
    "rss_mib",
    "signed_votes",
    "stave_server",
    "thread_cpu",
    "thread_names",
]

SLICE_SECONDS = 30.0  # request signatures are valid for 60 s: prepare about this much ahead at a time
FIRST_SLICE = {"vote": 400, "batch": 40}  # requests of the first slice, before the rate is known


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of every thread of ``pid`` so far (/proc)."""
    return _cpu_seconds(pid)


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` now, MiB (/proc)."""
    return _rss_mb(pid)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds so far of each thread of ``pid``, by thread id (/proc/<pid>/task/*/stat)."""
    seconds: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


_PY_SPY_THREAD = re.compile(r'^Thread (\d+) \(\w+\): "(.*)"', re.MULTILINE)


def thread_names(pid: int) -> dict[int, str]:
    """Python thread names by thread id, from ``py-spy dump`` where it runs; else the kernel's names."""
    names = {int(task.name): (task / "comm").read_text().strip() for task in Path(f"/proc/{pid}/task").iterdir()}
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return names
    names.update((int(tid), name) for tid, name in _PY_SPY_THREAD.findall(dump.stdout))
    return names


def by_thread(pid: int, before: dict[int, float], events: int) -> dict[str, float]:
    """Server CPU seconds per 1,000 events since ``before`` (a ``thread_cpu``), by thread name
    (pool workers' numbers folded: ``ThreadPoolExecutor-0_*``), largest first."""
    after = thread_cpu(pid)
    names = thread_names(pid)
    totals: dict[str, float] = {}
    for tid, seconds in after.items():
        name = re.sub(r"_\d+$", "_*", names.get(tid, str(tid)))
        totals[name] = totals.get(name, 0.0) + (seconds - before.get(tid, 0.0)) / events * 1e3
    return dict(sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda item: -item[1]))


def credentials(url: str, count: int) -> list[Client]:
    return _credentials(url, count)


def signed_votes(start: int, count: int) -> list[bytes]:
    """Distinct signed small votes (about 365 bytes each), signed on every core before anything is timed."""
    return _sign_in_parallel(_votes, start, count, max(1, os.cpu_count() or 1))


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p90 and p99 of latencies in seconds, as milliseconds."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50_ms": math.nan, "p90_ms": math.nan, "p99_ms": math.nan}
    return {
        f"p{round(q * 100)}_ms": ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 for q in (0.5, 0.9, 0.99)
    }


@dataclass
class Measured:
    """One fixed-count run of one subject: what it did, how long it took, what it cost."""

    events: int = 0
    requests: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    commits: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, part: Round) -> None:
        self.events += part.events
        self.requests += part.requests
        self.seconds += part.seconds
        self.server_cpu += part.server_cpu
        self.client_cpu += part.client_cpu
        self.commits += part.commits
        self.latencies += part.latencies

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "requests": self.requests,
            "seconds": self.seconds,
            "events_per_s": self.events_per_s,
            "server_cpu_s_per_1k_events": self.server_cpu / self.events * 1e3 if self.events else math.nan,
            "client_cpu_s_per_1k_events": self.client_cpu / self.events * 1e3 if self.events else math.nan,
            "server_cpu_share": self.server_cpu / self.seconds if self.seconds else math.nan,
            "client_cpu_share": self.client_cpu / self.seconds if self.seconds else math.nan,
            "events_per_commit": self.events / self.commits if self.commits else math.nan,
            **percentiles(self.latencies),
        }


def feed_stave(
    server: StaveServer, clients: list[Client], votes: Events, events: int, *, batch: bool = False
) -> Measured:
    """POST exactly ``events`` new votes (rounded up to a whole number per client, and per batch),
    one per request or ``BATCH`` per request, by ``len(clients)`` closed-loop clients.

    The run goes in slices, each prepared (request signatures) just before it is sent, so that a
    slow configuration (one client) never sends a signature older than the server accepts.
    """
    assert server.process is not None
    phase = "batch" if batch else "vote"
    per_request = BATCH if batch else 1
    requests_per_client = math.ceil(events / per_request / len(clients))
    slice_requests = FIRST_SLICE[phase]
    measured = Measured()
    left = requests_per_client
    while left:
        now = min(left, max(1, slice_requests // len(clients)))
        plans = _plans(phase, clients, now * len(clients), votes, votes)
        commits = _ingest_commits(server.url)
        part = _drive(server.url, plans, math.inf, server.process.pid)
        part.commits = _ingest_commits(server.url) - commits
        measured.add(part)
        left -= now
        slice_requests = int(part.requests / part.seconds * SLICE_SECONDS)  # the rate just seen, for 30 s
    return measured


@contextmanager
def stave_server(data_dir: Path, votes: list[bytes], env: dict[str, str] | None = None) -> Iterator[StaveServer]:
    """``stave serve`` on the embedded defaults but ``bench/server.py``'s SERVER_ENV (and ``env``)."""
    server = StaveServer(data_dir, env={**SERVER_ENV, **(env or {})}).start()
    try:
        yield server
    finally:
        server.stop()


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds on a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.perf_counter()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter() - self._started, rss_mib(self.pid)))
            except (FileNotFoundError, ProcessLookupError):
                return
            self._stop.wait(self.interval)

    @property
    def peak(self) -> float:
        return max((mib for _, mib in self.samples), default=math.nan)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
