"""Server: ingest throughput and latency over HTTP, beside a trivial endpoint on the same server.

Goals (issue: the server), at 32 concurrent clients on one real ``stave serve``:
- single-event ingest (``POST /events``, small votes) at >= 35% of the request rate of a trivial
  endpoint on the same server stack, measured in the same run (this needs group commit: many
  events per fsync);
- batch ingest of small events (``POST /events:batch``, 100 per request, JSON Lines) at >= 5x
  the events/s of single-event ingest.

Also reported, without goals: the same at 1 client, White Album bundles (~90 KB) one per
request, p50/p99 latencies, CPU seconds per request of the server and of the load generator,
and the server's RSS after the run.

The server runs on the embedded defaults (SQLite, two local store directories with their events in
SQLite, checkpoints every
5 s or 1000 events) except for what a benchmark must change, which is printed and recorded:
rate limits raised far above the load (the defaults, 200/s per address and 500/s per credential,
would refuse it), a low proof-of-work difficulty (only to get 32 credentials fast), and the music
graph's background follower off (``graph.follow = false``: this measures ingest; the graph is
measured by ``bench/graph.py``, and a deployment at scale runs it as its own process). The
trivial endpoint is ``GET /log/vkey``: a constant string, no I/O, through the same middleware
(metrics, request ids, a JSON log line) as every other route. The store is in its steady state:
a store past about a million events has every two-level shard directory already, so the shard
directories of the submitted events are created before the server starts (as the store
benchmark does); creating them is a one-time cost of a young store, measured separately by the
store benchmark, not a cost per event.

The load generator runs in this process on the same machine: one thread per client, each with
its own ``httpx.Client`` (keep-alive) and its own app credential. Events are signed before the
server starts; the request signatures (``Authorization`` + ``Stave-Signature``) are computed just
before each timed phase, since the server accepts a request timestamp only within +-60 s. Every
submission is a distinct new event. Its CPU use is measured beside the server's, so a saturated
generator would show.
"""

from __future__ import annotations

import math
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from tests.server.process import StaveServer
from tests.store.events import KEY, event

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from stave.auth import sign_request
from stave.cli.demo import load_white_album_template
from stave.client.http import StaveClient
from stave.event import sign_event

#: What differs from the embedded defaults, and why (printed and written with the results).
SERVER_ENV = {
    "STAVE_AUTH_RATE_PER_ADDRESS": "1000000",  # default 200/s: all clients share 127.0.0.1
    "STAVE_AUTH_RATE_PER_CREDENTIAL": "1000000",  # default 500/s
    "STAVE_AUTH_BURST": "1000000",  # default 1000
    "STAVE_AUTH_DIFFICULTY": "4",  # default 16: only to get the credentials quickly
    "STAVE_LOG_CHECKPOINT_INTERVAL": "5.0",  # the default again (the test helper sets 0.3 s)
    # Ingest alone: the music graph's follower (default on) would project every event in the same
    # process, as `stave project follow` does in its own process at scale; the graph's cost is
    # bench/graph.py's to measure.
    "STAVE_GRAPH_FOLLOW": "false",
}
CLIENTS = (1, 32)
ROUNDS = 2  # each phase runs ROUNDS times, interleaved with the others; the best round counts
SECONDS = 5.0  # per round of a phase: requests are sent until then, and all answers awaited
BATCH = 100  # events per POST /events:batch
GENERATOR_LIMIT = 0.9  # cores: above this the (GIL-bound) load generator, not the server, sets the pace
#: Upper bounds on requests per round (all clients together), so enough events are signed;
#: a phase that runs out before SECONDS is marked in the table (its rate is still right).
CAPS = {
    ("trivial", 1): 40_000,
    ("trivial", 32): 60_000,
    ("vote", 1): 1_500,
    ("vote", 32): 3_000,
    ("album", 1): 600,
    ("album", 32): 700,
    ("batch", 1): 80,
    ("batch", 32): 224,
}
PHASES = ("trivial", "vote", "album", "batch")
DESCRIPTIONS = {
    "trivial": "GET /log/vkey (trivial)",
    "vote": "POST /events vote",
    "album": "POST /events White Album",
    "batch": f"POST /events:batch {BATCH} votes",
}


# --- events, signed before anything is timed ------------------------------------------------


def _votes(start: int, count: int) -> list[bytes]:
    return [event(start + i).canonical_bytes() for i in range(count)]


def _albums(start: int, count: int) -> list[bytes]:
    template = load_white_album_template()
    template.pop("author_pubkey", None)
    out = []
    for i in range(count):
        template["created_at"] = 1_700_000_000 + start + i
        out.append(sign_event(template, KEY).canonical_bytes())
    return out


def _sign_in_parallel(fn: Callable[[int, int], list[bytes]], start: int, count: int, workers: int) -> list[bytes]:
    step = math.ceil(count / workers)
    starts = range(start, start + count, step)
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(fn, starts, [min(step, start + count - first) for first in starts])
        return [item for part in parts for item in part]


# --- the load generator ------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    key: bytes
    token: str


@dataclass(frozen=True)
class Prepared:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]
    events: int  # how many events it submits (0 for the trivial endpoint)


@dataclass
class Round:
    requests: int
    events: int
    seconds: float
    latencies: list[float]
    server_cpu: float
    client_cpu: float
    exhausted: bool
    commits: int = 0  # group commits of the ingestor during the round


def _prepare(client: Client, method: str, path: str, body: bytes, content_type: str, events: int) -> Prepared:
    headers = sign_request(client.key, client.token, method, path, body, time.time())
    headers["content-type"] = content_type
    return Prepared(method, path, body, headers, events)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _ingest_commits(url: str) -> int:
    """Group commits (ingest batches) so far, from the server's Prometheus metrics."""
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("stave_ingest_batches "):
            return int(float(line.split()[1]))
    raise RuntimeError("no stave_ingest_batches in /metrics")


def _drive(url: str, plans: list[list[Prepared]], seconds: float, pid: int) -> Round:
    """Each plan on its own thread and connection, in order, until it ends or ``seconds`` pass.

    The clock starts when every thread has its connection open; requests sent before the
    deadline are all awaited and counted, so the rate is requests (events) over that whole time.
    """
    latencies: list[list[float]] = [[] for _ in plans]
    done: list[list[Prepared]] = [[] for _ in plans]
    failures: list[str] = []
    start: dict[str, float] = {}

    def go() -> None:  # run by the barrier once every client is ready, before any is released
        start.update(wall=time.perf_counter(), server=_cpu_seconds(pid), client=time.process_time())

    ready = threading.Barrier(len(plans), action=go)

    def run(index: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            http.get("/log/vkey").raise_for_status()  # open the keep-alive connection first
            ready.wait()
            deadline = start["wall"] + seconds
            mine, sent = latencies[index], done[index]
            for item in plans[index]:
                if time.perf_counter() >= deadline:
                    break
                started = time.perf_counter()
                response = http.request(item.method, item.path, content=item.body, headers=item.headers)
                mine.append(time.perf_counter() - started)
                sent.append(item)
                if response.status_code not in (200, 201) or (item.events and b'"duplicate":true' in response.content):
                    failures.append(f"{item.method} {item.path}: {response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start["wall"]
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return Round(
        requests=sum(len(d) for d in done),
        events=sum(item.events for d in done for item in d),
        seconds=elapsed,
        latencies=[x for mine in latencies for x in mine],
        server_cpu=_cpu_seconds(pid) - start["server"],
        client_cpu=time.process_time() - start["client"],
        exhausted=any(len(d) == len(p) for d, p in zip(done, plans, strict=True)),
    )


class Events:
    """Pre-signed events handed out once each."""

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self._items = iter(items)

    def take(self, count: int) -> list[bytes]:
        out = [next(self._items, b"") for _ in range(count)]
        if not out[-1]:
            raise RuntimeError("ran out of pre-signed events; raise CAPS")
        return out


def _plans(phase: str, clients: list[Client], cap: int, votes: Events, albums: Events) -> list[list[Prepared]]:
    per_client = math.ceil(cap / len(clients))
    plans = []
    for client in clients:
        if phase == "trivial":
            plans.append([Prepared("GET", "/log/vkey", b"", {}, 0)] * per_client)
        elif phase == "vote":
            plans.append(
                [_prepare(client, "POST", "/events", v, "application/json", 1) for v in votes.take(per_client)]
            )
        elif phase == "album":
            plans.append(
                [_prepare(client, "POST", "/events", a, "application/json", 1) for a in albums.take(per_client)]
            )
        else:
            bodies = [b"\n".join(votes.take(BATCH)) + b"\n" for _ in range(per_client)]
            plans.append([_prepare(client, "POST", "/events:batch", b, "application/x-ndjson", BATCH) for b in bodies])
    return plans


def _credentials(url: str, count: int) -> list[Client]:
    clients = []
    for _ in range(count):
        key = secrets.token_bytes(32)
        with StaveClient(url, key=key) as client:
            clients.append(Client(key, client.credential()))
    return clients


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summarise(rounds: list[Round]) -> dict[str, Any]:
    best = max(rounds, key=lambda r: (r.events or r.requests) / r.seconds)
    latencies = [x for r in rounds for x in r.latencies]
    requests = sum(r.requests for r in rounds)
    return {
        "requests_per_s": best.requests / best.seconds,
        "events_per_s": best.events / best.seconds,
        "median_round_requests_per_s": statistics.median(r.requests / r.seconds for r in rounds),
        "median_round_events_per_s": statistics.median(r.events / r.seconds for r in rounds),
        "p50_ms": _p(latencies, 0.5) * 1e3,
        "p99_ms": _p(latencies, 0.99) * 1e3,
        "requests": requests,
        "events": sum(r.events for r in rounds),
        "events_per_commit": sum(r.events for r in rounds) / max(1, sum(r.commits for r in rounds)),
        "server_cpu_ms_per_request": sum(r.server_cpu for r in rounds) / requests * 1e3,
        "client_cpu_ms_per_request": sum(r.client_cpu for r in rounds) / requests * 1e3,
        "server_cpu_share": sum(r.server_cpu for r in rounds) / sum(r.seconds for r in rounds),
        "client_cpu_share": sum(r.client_cpu for r in rounds) / sum(r.seconds for r in rounds),
        "exhausted": any(r.exhausted for r in rounds),
    }


def _needed(kind: str) -> int:
    """Events the phases of ``kind`` ("vote" or "album") take, all rounds, rounded up per client."""
    total = 0
    for (phase, count), cap in CAPS.items():
        per_request = {"vote": {"vote": 1, "batch": BATCH}, "album": {"album": 1}}[kind].get(phase, 0)
        total += math.ceil(cap / count) * count * per_request * ROUNDS
    return total


def run(console: Console, *, seconds: float = SECONDS) -> list[Record]:
    workers = max(1, os.cpu_count() or 1)
    started = time.perf_counter()
    votes = Events(_sign_in_parallel(_votes, 0, _needed("vote"), workers))
    albums = Events(_sign_in_parallel(_albums, 0, _needed("album"), workers))
    console.print(f"signed the events in {time.perf_counter() - started:.1f} s")
    figures: dict[str, Any] = {
        "server_env": SERVER_ENV,
        "vote_bytes": len(event(0).canonical_bytes()),
        "album_bytes": len(_albums(0, 1)[0]),
        "batch_events": BATCH,
        "seconds_per_round": seconds,
        "rounds": ROUNDS,
        "cpus": os.cpu_count(),
    }
    results: dict[tuple[str, int], list[Round]] = {}
    with tempfile.TemporaryDirectory(prefix="stave-bench-server-") as temp:
        server = StaveServer(Path(temp) / "data", env=SERVER_ENV).start()
        try:
            assert server.process is not None
            pid = server.process.pid
            clients = _credentials(server.url, max(CLIENTS))
            for count in CLIENTS:
                for _ in range(ROUNDS):
                    for phase in PHASES:
                        plans = _plans(phase, clients[:count], CAPS[(phase, count)], votes, albums)
                        commits = _ingest_commits(server.url)
                        result = _drive(server.url, plans, seconds, pid)
                        result.commits = _ingest_commits(server.url) - commits
                        results.setdefault((phase, count), []).append(result)
            figures["server_rss_mb"] = _rss_mb(pid)
            figures["server_log_size"] = httpx.get(f"{server.url}/health").json()["database"]["detail"]
        finally:
            server.stop()
    figures["phases"] = {f"{phase}_{count}": _summarise(rounds) for (phase, count), rounds in results.items()}
    return _report(console, figures)


def _report(console: Console, figures: dict[str, Any]) -> list[Record]:
    phases = figures["phases"]
    table = Table(title=f"stave serve: best of {figures['rounds']} rounds of {figures['seconds_per_round']:g} s")
    for column in ("request", "clients", "req/s", "events/s", "p50 ms", "p99 ms", "ev/commit", "CPU server", "CPU gen"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for phase in PHASES:
        for count in CLIENTS:
            f = phases[f"{phase}_{count}"]
            table.add_row(
                DESCRIPTIONS[phase] + (" [yellow](ran out)[/yellow]" if f["exhausted"] else ""),
                str(count),
                f"{f['requests_per_s']:,.0f}",
                f"{f['events_per_s']:,.0f}" if phase != "trivial" else "-",
                f"{f['p50_ms']:.1f}",
                f"{f['p99_ms']:.1f}",
                f"{f['events_per_commit']:.1f}" if phase != "trivial" else "-",
                f"{f['server_cpu_share']:.2f}",
                f"{f['client_cpu_share']:.2f}",
            )
    console.print(table)
    for name, f in phases.items():
        if f["client_cpu_share"] >= GENERATOR_LIMIT:
            console.print(
                f"[yellow]{name}: the load generator used {f['client_cpu_share']:.2f} cores, near what one Python "
                "process can drive; that rate is a lower bound set by the generator, not the server[/yellow]"
            )
    console.print(
        "ev/commit: events per group commit of the ingestor; CPU: cores used by the server process and by "
        "the load generator (this process) while timed; per-request CPU and median rounds are in the results"
    )
    changed = ", ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
    console.print(f"server settings changed from the defaults: {changed}")
    console.print(
        f"events: vote {figures['vote_bytes']} B, White Album {figures['album_bytes']:,} B; server RSS after the "
        f"run {figures['server_rss_mb']:.0f} MB ({figures['server_log_size']}); {figures['cpus']} CPUs shared by the "
        "server and the load generator (which signs nothing while timed: events and request signatures are "
        "made before each phase)"
    )
    trivial, single, batch = phases["trivial_32"], phases["vote_32"], phases["batch_32"]
    limits = "embedded defaults but auth rate limits raised and the graph follower off"
    records = [
        goal_record(
            "server.single_ingest_32",
            single["events_per_s"],
            "events/s",
            ">=0.35",
            baseline=f"GET /log/vkey requests/s on the same server, 32 clients ({limits})",
            baseline_value=trivial["requests_per_s"],
        ),
        goal_record(
            "server.batch_vs_single_32",
            batch["events_per_s"],
            "events/s",
            ">=5",
            baseline=f"single-event ingest, 32 clients ({limits})",
            baseline_value=single["events_per_s"],
        ),
    ]
    figures["records"] = [record.name for record in records]
    print_records("server goals", records, console)
    upsert_summary(records)
    write_results("server", figures)
    return records
