"""A peer side by side: stave's ingest beside the Python Nostr relay ``nostr-relay`` (PyPI).

Both do the same job: verify a secp256k1 signature on a signed JSON event, store it, serve it.
``nostr-relay`` 1.14 checks the NIP-01 id (sha256 of the serialised event) and the BIP-340
Schnorr signature (coincurve), and stores each event in SQLite (WAL, ``synchronous=normal``: a
commit is not fsynced, so a power cut can lose the last acknowledged events) with its tags
indexed. stave verifies its id (RFC 8785 canonical JSON) and K1 signature, writes two durable
copies (two local directories, a quorum of two, each an fsynced SQLite commit) and sequences the
event in its Merkle log (SQLite, ``synchronous=FULL``) before it answers.

Goal (issue 7): stave ingests at least 3x the peer's events/s at 32 concurrent clients, with
that stronger durability, and at no more server CPU per event. Both are fed in bulk the way
their own clients do it, with the same number of events in flight per client: stave's
``POST /events:batch`` with 100 events per request (``stave submit`` sends batches), the
peer's WebSocket with 100 ``EVENT`` messages in flight (the next sent as each ``OK`` arrives,
as a Nostr client publishing many events does). One event per round trip (a closed loop: send,
await the acknowledgement, send the next) is measured too and printed beside it, without a
goal: there stave is about as fast as the peer, bound by the HTTP request and the request
signature it verifies per event.

Method: both servers run at once on this machine, each as its own process on a free 127.0.0.1
port with its data in a temp dir. Every round feeds each subject the same number of new
pre-signed events at the same concurrency, one subject after the other (peer and stave one at a
time, then peer and stave in bulk), rounds interleaved; the fastest round of each counts
(``bench/harness.py``), CPU and latencies are over all rounds. Each client is a thread with one
connection (a WebSocket for the peer, an HTTP keep-alive connection for stave). Also reported:
CPU seconds per 1,000 events of each server process and of the load generator (this process),
from /proc, and p50/p90/p99 latencies (per event for the peer, per request for stave); at 1, 4,
16 and 32 clients. A bulk run has at least a full batch per client (3,200 events at 32 clients).
The peer's events are NIP-01 kind-1 notes padded to the size of stave's vote events.
WebSocket compression is off (HTTP bodies are not compressed either). Afterwards every
acknowledged event is looked for in each side's storage (stave: the log's listing; the peer:
its SQLite table, and a REQ round trip for a sample), so neither is measured dropping work.

The relay's configuration: ``nostr-relay serve --use-uvicorn`` (one process, like ``stave
serve``), the validators of its default configuration, NIP-05 verification off (it would reach
the network), logging at WARNING. stave runs as in ``bench/server.py`` (embedded defaults, rate
limits raised). ``STAVE_BENCH_PEER_EVENTS`` sets the events per run (default 1,000; 10,000
with ``STAVE_BENCH_FULL=1``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import coincurve
import httpx
from rich.console import Console
from rich.table import Table
from tests.servers._process import free_ports
from websockets.sync.client import ClientConnection, connect

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from bench.load import (
    BATCH,
    SERVER_ENV,
    Events,
    Measured,
    by_thread,
    cpu_seconds,
    credentials,
    feed_stave,
    rss_mib,
    signed_votes,
    stave_server,
    thread_cpu,
)
from bench.server import Round, _sign_in_parallel
from stave.event import event_id, loads

FULL = os.environ.get("STAVE_BENCH_FULL") == "1"
EVENTS = int(os.environ.get("STAVE_BENCH_PEER_EVENTS", "10000" if FULL else "1000"))
CLIENTS = (1, 4, 16, 32)
ROUNDS = 2
SUBJECTS = ("peer", "single", "peer_stream", "batch")
DESCRIPTIONS = {
    "peer": "nostr-relay, one EVENT at a time",
    "single": "stave POST /events, one at a time",
    "peer_stream": f"nostr-relay, {BATCH} EVENTs in flight",
    "batch": f"stave POST /events:batch, {BATCH} per request",
}
#: what each subject is compared with: the same number of events in flight per client
BASELINES = {"peer": "peer", "single": "peer", "peer_stream": "peer_stream", "batch": "peer_stream"}
EVENT_BYTES = 365  # the size of bench/server.py's vote events, which the notes are padded to
NOSTR_AUTHORS = [coincurve.PrivateKey(hashlib.sha256(b"peer bench author %d" % i).digest()) for i in range(16)]


# --- the peer's events: NIP-01 kind-1 notes, BIP-340 signatures -----------------------------


def _note(number: int, created_at: int) -> dict[str, Any]:
    key = NOSTR_AUTHORS[number % len(NOSTR_AUTHORS)]
    pubkey = key.public_key_xonly.format().hex()
    tags: list[list[str]] = []
    content = f"note {number} "
    # 290 bytes is everything but the content: the keys, the id, the pubkey, the signature.
    content += "x" * max(0, EVENT_BYTES - 290 - len(content) - len(str(created_at)))
    serialised = json.dumps([0, pubkey, created_at, 1, tags, content], separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(serialised.encode()).digest()
    return {
        "id": digest.hex(),
        "pubkey": pubkey,
        "created_at": created_at,
        "kind": 1,
        "tags": tags,
        "content": content,
        "sig": key.sign_schnorr(digest).hex(),
    }


def _notes(start: int, count: int) -> list[bytes]:
    created_at = int(time.time())  # the relay refuses notes older than a year or an hour ahead
    return [json.dumps(_note(n, created_at), separators=(",", ":")).encode() for n in range(start, start + count)]


# --- the peer, as its own process -------------------------------------------------------------


class NostrRelay:
    """``nostr-relay`` on a free 127.0.0.1 port, its SQLite database and config in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_ports(1)[0]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.database = directory / "nostr.sqlite3"
        self.log_path = directory / "relay.log"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> dict[str, Any]:
        return {
            "DEBUG": False,
            "relay_name": "bench relay",
            "storage": {
                "sqlalchemy.url": f"sqlite+aiosqlite:///{self.database}",
                "num_concurrent_reqs": 10,
                "num_concurrent_adds": 2,
                "validators": [
                    "nostr_relay.validators.is_not_too_large",
                    "nostr_relay.validators.is_signed",
                    "nostr_relay.validators.is_recent",
                    "nostr_relay.validators.is_not_hellthread",
                ],
            },
            "verification": {"nip05_verification": "disabled", "expiration": 2592000, "update_frequency": 3600},
            "gunicorn": {"bind": f"127.0.0.1:{self.port}", "workers": 1, "loglevel": "warning"},
            "authentication": {"enabled": False},
            "message_timeout": 1800,
            "subscription_limit": 32,
            "max_limit": 6000,
            "hellthread_limit": 100,
            "logging": {
                "version": 1,
                "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
                "loggers": {"nostr_relay": {"level": "WARNING", "handlers": ["console"], "propagate": False}},
                "root": {"level": "WARNING", "handlers": ["console"]},
            },
        }

    def start(self) -> NostrRelay:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yaml"
        config.write_text(json.dumps(self.config(), indent=2))  # JSON is YAML
        executable = Path(sys.executable).with_name("nostr-relay")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(executable), "-c", str(config), "serve", "--use-uvicorn"],
                cwd=self.directory,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nostr-relay exited: {self.log_path.read_text()[-2000:]}")
            try:
                with connect(self.url, open_timeout=1, compression=None):
                    return self
            except (OSError, TimeoutError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nostr-relay did not start: {self.log_path.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def stored_ids(self) -> set[str]:
        """Every event id in the relay's SQLite table (read after it stopped)."""
        connection = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True)
        try:
            return {row[0].hex() for row in connection.execute("SELECT id FROM events")}
        finally:
            connection.close()


def feed_peer(
    relay: NostrRelay, clients: int, notes: Events, events: int, acked: list[str], *, window: int = 1
) -> Measured:
    """``events`` notes (rounded up to a whole number per client) by ``clients`` WebSocket clients,
    each keeping ``window`` notes in flight: 1 is a closed loop (send, await the OK, send the
    next); more is how a Nostr client publishes in bulk (it sends the next EVENT as each OK
    arrives, never more than ``window`` unanswered)."""
    per_client = math.ceil(events / clients)
    plans = [[(note, json.loads(note)["id"]) for note in notes.take(per_client)] for _ in range(clients)]
    latencies: list[list[float]] = [[] for _ in plans]
    failures: list[str] = []
    start: dict[str, float] = {}

    def go() -> None:
        start.update(wall=time.perf_counter(), server=cpu_seconds(relay.pid), client=time.process_time())

    ready = threading.Barrier(clients, action=go)

    def run(index: int) -> None:
        try:
            with connect(relay.url, compression=None, max_size=None) as socket:
                ready.wait()
                _stream(socket, plans[index], window, latencies[index], acked)
        except Exception as exc:  # reported below, with the run's figures discarded
            ready.abort()
            failures.append(repr(exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} peer clients failed, e.g. {failures[0]}")
    measured = Measured()
    measured.add(
        Round(
            requests=sum(len(p) for p in plans),
            events=sum(len(p) for p in plans),
            seconds=time.perf_counter() - start["wall"],
            latencies=[x for mine in latencies for x in mine],
            server_cpu=cpu_seconds(relay.pid) - start["server"],
            client_cpu=time.process_time() - start["client"],
            exhausted=False,
        )
    )
    return measured


def _stream(
    socket: ClientConnection, plan: list[tuple[bytes, str]], window: int, latencies: list[float], acked: list[str]
) -> None:
    """Send ``plan``'s notes with at most ``window`` awaiting their OK; each OK must accept its note."""
    sent: dict[str, float] = {}
    position = 0
    while position < len(plan) or sent:
        while position < len(plan) and len(sent) < window:
            note, note_id = plan[position]
            sent[note_id] = time.perf_counter()
            socket.send(b'["EVENT",' + note + b"]", text=True)
            position += 1
        reply = json.loads(socket.recv())
        if reply[0] == "NOTICE":
            raise RuntimeError(f"nostr-relay: {reply}")
        if reply[0] == "OK" and reply[1] in sent:
            if reply[2] is not True:
                raise RuntimeError(f"nostr-relay refused {reply[1]}: {reply}")
            latencies.append(time.perf_counter() - sent.pop(reply[1]))
            acked.append(reply[1])


def _req(relay: NostrRelay, ids: list[str]) -> set[str]:
    """The ids among ``ids`` a REQ returns (the relay serves what it stored)."""
    found: set[str] = set()
    with connect(relay.url, compression=None, max_size=None) as socket:
        socket.send(json.dumps(["REQ", "check", {"ids": ids, "limit": len(ids)}]))
        while True:
            reply = json.loads(socket.recv())
            if reply[0] == "EVENT":
                found.add(reply[2]["id"])
            elif reply[0] == "EOSE":
                return found


def _stave_id(data: bytes) -> str:
    value = loads(data)
    assert isinstance(value, dict)
    return event_id(value)


def _stave_ids(url: str) -> set[str]:
    """Every event id in stave's log, by its public listing."""
    ids: set[str] = set()
    after = -1
    with httpx.Client(base_url=url, timeout=60) as http:
        while True:
            page = http.get("/events", params={"after_seq": after, "limit": 1000}).raise_for_status().json()
            ids.update(item["id"] for item in page["events"])
            if not page["events"]:
                return ids
            after = page["next_after_seq"]


# --- the run ----------------------------------------------------------------------------------


def _bulk_events(clients: int, events: int) -> int:
    """Events of a bulk run: at least ``events`` and a full batch for every client, whole batches each."""
    return math.ceil(max(events, clients * BATCH) / BATCH / clients) * clients * BATCH


def run(
    console: Console, *, events: int = EVENTS, clients: tuple[int, ...] = CLIENTS, rounds: int = ROUNDS
) -> list[Record]:
    need = sum(math.ceil(events / c) * c + _bulk_events(c, events) for c in clients) * rounds
    started = time.perf_counter()
    notes = Events(_sign_in_parallel(_notes, 0, need, max(1, os.cpu_count() or 1)))
    votes = Events(signed_votes(0, need))
    console.print(f"signed {need:,} notes and {need:,} stave events in {time.perf_counter() - started:.1f} s")
    results: dict[tuple[str, int], list[Measured]] = {}
    acked_peer: list[str] = []
    figures: dict[str, Any] = {
        "events_per_run": events,
        "bulk_events_per_run": {str(c): _bulk_events(c, events) for c in clients},
        "rounds": rounds,
        "clients": list(clients),
        "cpus": os.cpu_count(),
        "stave_event_bytes": len(votes.items[0]),
        "peer_event_bytes": len(notes.items[0]),
        "stave_env": SERVER_ENV,
        "peer": "nostr-relay 1.14 (PyPI), serve --use-uvicorn, SQLite",
    }
    with tempfile.TemporaryDirectory(prefix="stave-bench-peer-") as temp:
        relay = NostrRelay(Path(temp) / "relay").start()
        try:
            with stave_server(Path(temp) / "stave", votes.items) as server:
                assert server.process is not None
                stave_clients = credentials(server.url, max(clients))
                # A few notes round trip first: the relay accepts these signatures and serves them back.
                probe = Events(_notes(10**9, 3))
                feed_peer(relay, 1, probe, 3, acked_peer)
                if _req(relay, acked_peer[-3:]) != set(acked_peer[-3:]):
                    raise RuntimeError("nostr-relay acknowledged notes that a REQ does not return")
                for count in clients:
                    for number in range(rounds):
                        for subject in SUBJECTS:
                            bulk = subject in ("peer_stream", "batch")
                            fed = _bulk_events(count, events) if bulk else events
                            if subject.startswith("peer"):
                                window = BATCH if bulk else 1
                                result = feed_peer(relay, count, notes, fed, acked_peer, window=window)
                            else:
                                before = thread_cpu(server.process.pid)
                                result = feed_stave(server, stave_clients[:count], votes, fed, batch=bulk)
                                if count == max(clients):  # where stave's CPU goes, by thread (last round kept)
                                    threads = by_thread(server.process.pid, before, result.events)
                                    figures.setdefault("stave_threads_cpu_s_per_1k_events", {})[subject] = threads
                            results.setdefault((subject, count), []).append(result)
                            console.print(
                                f"  {DESCRIPTIONS[subject]}, {count} clients, round {number + 1}:"
                                f" {result.events_per_s:,.0f} events/s"
                            )
                figures["stave_rss_mib"] = rss_mib(server.process.pid)
                figures["peer_rss_mib"] = rss_mib(relay.pid)
                fed_stave = sum(
                    m.events for (subject, _), runs in results.items() if not subject.startswith("peer") for m in runs
                )
                acked_stave = {_stave_id(data) for data in votes.items[:fed_stave]}
                stored_stave = _stave_ids(server.url)
                sample = random.Random(7).sample(acked_peer, min(200, len(acked_peer)))
                served_peer = _req(relay, sample)
        finally:
            relay.stop()
        stored_peer = relay.stored_ids()
        figures["check"] = {
            "stave_acknowledged": len(acked_stave),
            "stave_stored": len(acked_stave & stored_stave),
            "peer_acknowledged": len(set(acked_peer)),
            "peer_stored": len(set(acked_peer) & stored_peer),
            "peer_req_sample": len(sample),
            "peer_req_served": len(served_peer),
        }
        check = figures["check"]
        if check["stave_stored"] != check["stave_acknowledged"] or check["peer_stored"] != check["peer_acknowledged"]:
            raise RuntimeError(f"acknowledged events missing from storage: {check}")
        if check["peer_req_served"] != check["peer_req_sample"]:
            raise RuntimeError(f"nostr-relay does not serve events it stored: {check}")
        figures["phases"] = {f"{subject}_{count}": _summarise(runs) for (subject, count), runs in results.items()}
        records = _report(console, figures)
        console.print("removing the servers' data")
    return records


def _summarise(runs: list[Measured]) -> dict[str, Any]:
    best = max(runs, key=lambda m: m.events_per_s)
    total = Measured()
    for measured in runs:
        total.add(
            Round(
                measured.requests,
                measured.events,
                measured.seconds,
                measured.latencies,
                measured.server_cpu,
                measured.client_cpu,
                False,
                measured.commits,
            )
        )
    return {
        **total.figures(),
        "events_per_s": best.events_per_s,
        "median_round_events_per_s": sorted(m.events_per_s for m in runs)[len(runs) // 2],
        "rounds": [m.events_per_s for m in runs],
    }


def _report(console: Console, figures: dict[str, Any]) -> list[Record]:
    phases = figures["phases"]
    table = Table(
        title=f"stave beside nostr-relay: {figures['events_per_run']:,} events per run, best of {figures['rounds']}"
    )
    for column in (
        "subject",
        "clients",
        "events/s",
        "x peer",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "CPU s/1k server",
        "CPU s/1k gen",
    ):
        table.add_column(column, justify="left" if column == "subject" else "right")
    for count in figures["clients"]:
        for subject in SUBJECTS:
            f = phases[f"{subject}_{count}"]
            peer = phases[f"{BASELINES[subject]}_{count}"]
            table.add_row(
                DESCRIPTIONS[subject],
                str(count),
                f"{f['events_per_s']:,.0f}",
                f"{f['events_per_s'] / peer['events_per_s']:.2f}",
                f"{f['p50_ms']:.1f}",
                f"{f['p90_ms']:.1f}",
                f"{f['p99_ms']:.1f}",
                f"{f['server_cpu_s_per_1k_events']:.2f}",
                f"{f['client_cpu_s_per_1k_events']:.2f}",
            )
    console.print(table)
    check = figures["check"]
    console.print(
        f"every acknowledged event stored: stave {check['stave_stored']:,}/{check['stave_acknowledged']:,} (its log's "
        f"listing), nostr-relay {check['peer_stored']:,}/{check['peer_acknowledged']:,} (its SQLite table; a REQ "
        f"served {check['peer_req_served']}/{check['peer_req_sample']} sampled); RSS after the run: stave "
        f"{figures['stave_rss_mib']:.0f} MiB, nostr-relay {figures['peer_rss_mib']:.0f} MiB"
    )
    top = max(figures["clients"])
    for subject, threads in figures.get("stave_threads_cpu_s_per_1k_events", {}).items():
        shares = ", ".join(f"{name} {seconds:.2f}" for name, seconds in list(threads.items())[:6])
        console.print(
            f"stave server CPU s per 1,000 events by thread, {DESCRIPTIONS[subject]}, {top} clients: {shares}"
        )
    batch, peer = phases[f"batch_{top}"], phases[f"peer_stream_{top}"]
    single, one_at_a_time = phases[f"single_{top}"], phases[f"peer_{top}"]
    console.print(
        f"one event per round trip, {top} clients: stave {single['events_per_s']:,.0f} events/s, nostr-relay "
        f"{one_at_a_time['events_per_s']:,.0f} ({single['events_per_s'] / one_at_a_time['events_per_s']:.2f}x); "
        f"server CPU s per 1,000 events {single['server_cpu_s_per_1k_events']:.2f} against "
        f"{one_at_a_time['server_cpu_s_per_1k_events']:.2f}"
    )
    console.print(
        "durability: stave answers once 2 copies are durable (fsynced) and the event is sequenced in its Merkle "
        "log (SQLite synchronous=FULL); nostr-relay commits to one SQLite in WAL mode with synchronous=normal "
        "(no sync on commit)"
    )
    records = [
        goal_record(
            f"peer.ingest_vs_nostr_relay_{top}",
            batch["events_per_s"],
            "events/s",
            ">=3",
            baseline=f"nostr-relay, {top} WebSocket clients with {BATCH} EVENTs in flight each (stave: "
            f"{top} clients, {BATCH} events per POST /events:batch), same run",
            baseline_value=peer["events_per_s"],
        ),
        goal_record(
            f"peer.cpu_per_1k_vs_nostr_relay_{top}",
            batch["server_cpu_s_per_1k_events"],
            "CPU s/1k events",
            "<=1",
            baseline=f"nostr-relay server CPU, {top} clients with {BATCH} EVENTs in flight each, same run",
            baseline_value=peer["server_cpu_s_per_1k_events"],
        ),
    ]
    figures["records"] = [record.name for record in records]
    print_records("stave beside a peer", records, console)
    upsert_summary(records)
    write_results("peer", figures)
    return records
