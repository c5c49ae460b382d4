"""The reliability drill toolkit: a bounded load generator and one invariant checker for every drill.

``Load`` runs N concurrent clients (each with its own app credential, obtained by proof of work)
that submit pre-signed events to a real ``stave serve`` process, bounded in count and seconds,
and records every attempt: acknowledged ``(id, seq)``, refused with its status, or unanswered
(the request died mid-flight: the event may or may not be stored).

``check_invariants`` is what every drill asserts afterwards:

1. the log lists entries ``0 … size−1`` with no gap and no repeated id;
2. every acknowledged event is in the log exactly once, at the sequence number it was
   acknowledged with, and ``GET /events/{id}`` returns exactly the bytes that were submitted,
   verified (strict JSON, schema, id, signature) on this side too;
3. the log holds nothing unacknowledged except events whose request died mid-flight (those
   may or may not have been stored; nothing refused and nothing never sent may appear);
4. the proof bundle of every acknowledged event verifies (``verify_bundle``) and proves the
   acknowledged position;
5. with the server stopped: ``stave log verify`` is clean and ``stave store scrub`` finds no
   missing, corrupt or unavailable copy (after one repairing scrub where the drill expects
   repair), and orphans (stray copies of refused writes) only as many as writes were refused.

Figures go to ``bench/results/drills.json`` when ``STAVE_DRILL_REPORT=1`` (``make drill``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

from stave.client import StaveClient
from stave.db import open_database
from stave.event import Event, admit
from stave.log.bundle import verify_bundle
from tests.server.process import StaveServer
from tests.servers import PostgresServer, SeaweedServer
from tests.store.events import event

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "bench" / "results" / "drills.json"

#: Settings every drill server runs with: real credentials at a low proof-of-work difficulty (32
#: clients solve one each), rate limits out of the way (the drills measure reliability, not
#: abuse control), checkpoints often so proofs are soon available.
DRILL_ENV = {
    "STAVE_AUTH_DIFFICULTY": "8",
    "STAVE_AUTH_RATE_PER_ADDRESS": "1000000",
    "STAVE_AUTH_RATE_PER_CREDENTIAL": "1000000",
    "STAVE_AUTH_BURST": "1000000",
    "STAVE_LOG_CHECKPOINT_INTERVAL": "0.3",
    "STAVE_ANCHOR_INTERVAL": "3600",
}

NO_ANSWER = -1  # the request died mid-flight: sent, maybe stored, never answered
NOT_SENT = 0  # the connection was refused: nothing reached the server


def long_drills() -> bool:
    """True under ``make drill`` (STAVE_DRILL_REPORT=1): the drill tests then also write figures."""
    return os.environ.get("STAVE_DRILL_REPORT") == "1"


def signed_events(first: int, count: int) -> list[Event]:
    """Distinct signed events, numbered from ``first`` (each drill takes its own range)."""
    return [event(first + number) for number in range(count)]


def drill_server(data_dir: Path, env: dict[str, str] | None = None) -> StaveServer:
    return StaveServer(data_dir, env={**DRILL_ENV, **(env or {})})


# --- the load generator -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    at: float  # time.monotonic() when the answer (or the failure) came
    event_id: str
    status: int  # HTTP status, NOT_SENT or NO_ANSWER
    seq: int | None = None
    retry_after: str | None = None
    detail: str = ""
    sent_at: float = 0.0  # time.monotonic() when the request was sent


@dataclass
class Outcome:
    """Everything a load (or several, merged) submitted and what each submission was told."""

    sent: dict[str, bytes] = field(default_factory=dict)  # id -> the canonical bytes submitted
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def acknowledged(self) -> dict[str, int]:
        acks: dict[str, int] = {}
        for attempt in self.attempts:
            if attempt.seq is not None:
                first = acks.setdefault(attempt.event_id, attempt.seq)
                assert first == attempt.seq, f"{attempt.event_id} acknowledged at {first}, later at {attempt.seq}"
        return acks

    @property
    def unanswered(self) -> set[str]:
        """Events some request of which died mid-flight and that were never acknowledged."""
        acks = self.acknowledged
        return {a.event_id for a in self.attempts if a.status == NO_ANSWER and a.event_id not in acks}

    @property
    def refused(self) -> dict[str, int]:
        """Events that were never acknowledged and never left unanswered: each with its last status."""
        acks, unanswered = self.acknowledged, self.unanswered
        return {a.event_id: a.status for a in self.attempts if a.event_id not in acks and a.event_id not in unanswered}

    def statuses(self) -> Counter[int]:
        return Counter(attempt.status for attempt in self.attempts)

    def between(self, start: float, end: float) -> Outcome:
        """The attempts answered in ``[start, end)``: what the clients were told in one phase."""
        return Outcome(self.sent, [a for a in self.attempts if start <= a.at < end], end - start)

    def sent_between(self, start: float, end: float) -> Outcome:
        """The attempts sent in ``[start, end)`` (answered whenever)."""
        return Outcome(self.sent, [a for a in self.attempts if start <= a.sent_at < end], end - start)

    def latency(self) -> dict[str, float]:
        """Seconds from request to answer: median and maximum."""
        spans = sorted(a.at - a.sent_at for a in self.attempts)
        if not spans:
            return {"latency_p50": 0.0, "latency_max": 0.0}
        return {"latency_p50": round(spans[len(spans) // 2], 3), "latency_max": round(spans[-1], 3)}

    def merge(self, other: Outcome) -> Outcome:
        return Outcome({**self.sent, **other.sent}, self.attempts + other.attempts, self.seconds + other.seconds)

    def figures(self) -> dict[str, Any]:
        statuses = self.statuses()
        return {
            "events_acknowledged": len(self.acknowledged),
            "events_refused": len(self.refused),
            "events_unanswered": len(self.unanswered),
            "attempts": len(self.attempts),
            "statuses": {str(status): count for status, count in sorted(statuses.items())},
            "load_seconds": round(self.seconds, 2),
            "acks_per_second": round(len(self.acknowledged) / self.seconds, 1) if self.seconds else 0.0,
            **self.latency(),
        }


class Load:
    """N clients submitting pre-signed events concurrently, in the background, bounded in count and time.

    Each client submits its share of ``events`` one by one (``POST /events``). With ``retry``,
    an event that got no answer or a 503 is submitted again (after ``backoff`` seconds) until it
    is answered otherwise or time runs out: a retried event that had been stored comes back as a
    duplicate with its original seq. Without ``retry`` each event is submitted once, and a client
    that was refused pauses ``backoff`` seconds before its next event.
    """

    def __init__(
        self,
        url: str,
        events: list[Event],
        *,
        clients: int = 32,
        seconds: float = 30.0,
        retry: bool = False,
        backoff: float = 0.05,
        timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.events = events
        self.clients = clients
        self.seconds = seconds
        self.retry = retry
        self.backoff = backoff
        self.timeout = timeout
        self.outcome = Outcome(sent={e.id: e.canonical_bytes() for e in events})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._started = 0.0

    def start(self) -> Load:
        self._started = time.monotonic()
        shares = [self.events[index :: self.clients] for index in range(self.clients)]
        self._threads = [threading.Thread(target=self._client, args=(share,), daemon=True) for share in shares]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def acknowledged_count(self) -> int:
        with self._lock:
            return sum(1 for attempt in self.outcome.attempts if attempt.seq is not None)

    def wait_for_acks(self, count: int, within: float = 60.0) -> None:
        """Block until ``count`` acknowledgements have been recorded (fail after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while self.acknowledged_count() < count:
            assert not self._errors, self._errors
            assert time.monotonic() < deadline, f"only {self.acknowledged_count()} of {count} acks in {within} s"
            time.sleep(0.02)

    def wait_until(self, condition: Callable[[list[Attempt]], bool], what: str, within: float = 60.0) -> None:
        """Block until ``condition(attempts so far)`` holds (fail after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while True:
            with self._lock:
                attempts = list(self.outcome.attempts)
            if condition(attempts):
                return
            assert not self._errors, self._errors
            assert time.monotonic() < deadline, f"not within {within} s: {what}"
            time.sleep(0.02)

    def join(self) -> Outcome:
        for thread in self._threads:
            thread.join(timeout=self.seconds + self.timeout + 60)
        assert not any(thread.is_alive() for thread in self._threads), "a load client did not stop"
        assert not self._errors, self._errors
        self.outcome.seconds = time.monotonic() - self._started
        return self.outcome

    def run(self) -> Outcome:
        return self.start().join()

    def _record(self, attempt: Attempt) -> None:
        with self._lock:
            self.outcome.attempts.append(attempt)

    def _client(self, share: list[Event]) -> None:
        deadline = self._started + self.seconds
        try:
            with StaveClient(self.url, timeout=self.timeout) as client:
                for item in share:
                    while not self._stop.is_set() and time.monotonic() < deadline:
                        attempt = self._submit(client, item)
                        self._record(attempt)
                        if attempt.seq is not None:
                            break
                        time.sleep(self.backoff)  # refused or cut off: back off before the next request
                        if not self.retry or attempt.status not in (NO_ANSWER, NOT_SENT, 503):
                            break
                    if self._stop.is_set() or time.monotonic() >= deadline:
                        return
        except BaseException as exc:  # surfaced by join(): a client bug must fail the drill
            self._errors.append(exc)

    def _submit(self, client: StaveClient, item: Event) -> Attempt:
        sent_at = time.monotonic()
        return dataclasses.replace(self._attempt(client, item), sent_at=sent_at)

    def _attempt(self, client: StaveClient, item: Event) -> Attempt:
        try:
            response = client.signed_request("POST", "/events", item.canonical_bytes(), "application/json")
        except httpx.ConnectError as exc:
            return Attempt(time.monotonic(), item.id, NOT_SENT, detail=str(exc))
        except httpx.TransportError as exc:  # reset, read timeout, protocol error: the request died mid-flight
            return Attempt(time.monotonic(), item.id, NO_ANSWER, detail=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # the credential exchange was refused (e.g. 503 while the server starts)
            status = getattr(exc, "status", None)
            if isinstance(status, int):
                return Attempt(time.monotonic(), item.id, status, detail=str(exc))
            raise
        now = time.monotonic()
        if response.status_code in (200, 201):
            body = response.json()
            assert body["id"] == item.id, f"acknowledged {body['id']} for {item.id}"
            return Attempt(now, item.id, response.status_code, seq=int(body["seq"]), detail=",".join(body["stored"]))
        return Attempt(
            now, item.id, response.status_code, None, response.headers.get("retry-after"), response.text[:2000]
        )


# --- the CLI ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScrubCounts:
    ok: int
    missing: int
    corrupt: int
    unavailable: int
    repaired: int
    orphaned: int
    temporaries: int  # left by crashed writes, removed


@dataclass(frozen=True, slots=True)
class Scrub:
    returncode: int
    checked: int
    verdict: str
    backends: dict[str, ScrubCounts]
    unrecoverable: list[str]
    output: str

    def total(self, column: str) -> int:
        return sum(getattr(counts, column) for counts in self.backends.values())


_SCRUB_TITLE = re.compile(r"scrub of (\d+) events: (\w+)")


def stave_cli(
    data_dir: Path, env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stave.cli", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "200"},
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def scrub(data_dir: Path, env: dict[str, str]) -> Scrub:
    """``stave store scrub``, its table read back into numbers."""
    done = stave_cli(data_dir, env, "store", "scrub")
    title = _SCRUB_TITLE.search(done.stdout)
    assert title is not None, f"no scrub report in: {done.stdout}\n{done.stderr}"
    backends: dict[str, ScrubCounts] = {}
    for line in done.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│┃").split("│")]
        if len(cells) == 1 + len(fields(ScrubCounts)) and all(cell.isdigit() for cell in cells[1:]):
            backends[cells[0]] = ScrubCounts(*(int(cell) for cell in cells[1:]))
    unrecoverable: list[str] = []
    for line in done.stderr.splitlines():
        if line.startswith("unrecoverable"):
            unrecoverable = line.split(":", 1)[1].split()
    return Scrub(done.returncode, int(title[1]), title[2], backends, unrecoverable, done.stdout + done.stderr)


_BAD_NODE = re.compile(r"problem: stored node \(level (\d+), index (\d+)\) has a wrong hash")


def log_verify(data_dir: Path, env: dict[str, str]) -> tuple[int, list[tuple[int, int]], str]:
    """``stave log verify``: its exit code, the (level, index) of every node it reports wrong, its output."""
    done = stave_cli(data_dir, env, "log", "verify")
    bad = [(int(level), int(index)) for level, index in _BAD_NODE.findall(done.stdout)]
    return done.returncode, bad, done.stdout + done.stderr


# --- the invariant checker --------------------------------------------------------------------


def read_log(url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        after = -1
        while True:
            response = http.get("/events", params={"after_seq": after, "limit": 1000})
            assert response.status_code == 200, response.text
            page = response.json()["events"]
            if not page:
                return entries
            entries.extend(page)
            after = page[-1]["seq"]


def check_reads(url: str, expected: dict[str, bytes], *, workers: int = 8) -> dict[int, int]:
    """GET every event: the answer is exactly the submitted bytes, verified here, or an error status.

    Never a wrong event. Returns the count per status (200 when served)."""

    def read(item: tuple[str, bytes]) -> int:
        event_id, data = item
        response = http.get(f"/events/{event_id}")
        if response.status_code == 200:
            assert response.content == data, f"GET /events/{event_id} returned other bytes than were submitted"
            assert admit(response.content, expected_id=event_id).id == event_id
        return response.status_code

    with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(workers) as pool:
        return dict(Counter(pool.map(read, expected.items())))


def wait_for_checkpoint(url: str, size: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, timeout=30) as http:
        while True:
            note = http.get("/log/checkpoint").text
            if int(note.splitlines()[1]) >= size:
                return
            assert time.monotonic() < deadline, f"no checkpoint of size {size} within {within} s: {note}"
            time.sleep(0.1)


def check_proofs(url: str, acknowledged: dict[str, int], *, workers: int = 8) -> int:
    """The proof bundle of every acknowledged event verifies and proves its acknowledged position."""
    with httpx.Client(base_url=url, timeout=30) as http, ThreadPoolExecutor(workers) as pool:
        vkey = http.get("/log/vkey").text.strip()

        def prove(item: tuple[str, int]) -> None:
            event_id, seq = item
            response = http.get(f"/events/{event_id}/proof")
            assert response.status_code == 200, f"{event_id}: {response.status_code} {response.text[:2000]}"
            bundle = response.json()
            verify_bundle(bundle, vkey)
            assert bundle["inclusion_proof"]["log_index"] == seq, f"{event_id} proven at another position"

        list(pool.map(prove, acknowledged.items()))
    return len(acknowledged)


@dataclass
class Checked:
    """What the checker saw, for the drill's figures."""

    log_size: int = 0
    acknowledged: int = 0
    reads_verified: int = 0
    proofs_verified: int = 0
    unacknowledged_in_log: int = 0
    lost: int = 0
    scrub_first: dict[str, Any] = field(default_factory=dict)
    log_verify: str = ""
    scrub_passes: int = 0
    online_seconds: float = 0.0
    offline_seconds: float = 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "log_size": self.log_size,
            "lost": self.lost,
            "reads_verified": self.reads_verified,
            "proofs_verified": self.proofs_verified,
            "unacknowledged_in_log": self.unacknowledged_in_log,
            "first_scrub": self.scrub_first,
            "scrub_passes": self.scrub_passes,
            "check_online_seconds": round(self.online_seconds, 2),
            "check_offline_seconds": round(self.offline_seconds, 2),
        }


def check_online(url: str, outcome: Outcome, *, earlier: Iterable[str] = (), checked: Checked | None = None) -> Checked:
    """Invariants 1–4, over HTTP against a running server. ``earlier``: ids in the log from before the drill."""
    checked = checked or Checked()
    began = time.monotonic()
    acknowledged = outcome.acknowledged
    entries = read_log(url)
    seqs = [entry["seq"] for entry in entries]
    assert seqs == list(range(len(entries))), "the log has a gap or a repeated sequence number"
    by_id = {entry["id"]: entry["seq"] for entry in entries}
    assert len(by_id) == len(entries), "an event is in the log twice"
    lost = {event_id: seq for event_id, seq in acknowledged.items() if by_id.get(event_id) != seq}
    checked.lost = len(lost)
    assert not lost, f"{len(lost)} acknowledged events missing or moved: {list(lost.items())[:5]}"
    allowed = outcome.unanswered | set(earlier)
    unacknowledged = set(by_id) - set(acknowledged)
    intruders = unacknowledged - allowed
    assert not intruders, (
        f"{len(intruders)} events in the log that were never acknowledged and not in flight: "
        f"{[(i, outcome.refused.get(i, 'never sent')) for i in list(intruders)[:5]]}"
    )
    reads = check_reads(url, {event_id: outcome.sent[event_id] for event_id in acknowledged})
    assert reads == ({200: len(acknowledged)} if acknowledged else {}), f"reads of acknowledged events: {reads}"
    wait_for_checkpoint(url, len(entries))
    checked.proofs_verified = check_proofs(url, acknowledged)
    checked.log_size = len(entries)
    checked.acknowledged = len(acknowledged)
    checked.reads_verified = reads.get(200, 0)
    checked.unacknowledged_in_log = len(unacknowledged - set(earlier))
    checked.online_seconds = time.monotonic() - began
    return checked


def check_offline(
    data_dir: Path,
    env: dict[str, str],
    *,
    expect_repair: bool = False,
    allowed_orphans: int = 0,
    checked: Checked | None = None,
) -> Checked:
    """Invariant 5, with the server stopped: ``stave log verify`` and ``stave store scrub``."""
    checked = checked or Checked()
    began = time.monotonic()
    code, bad, output = log_verify(data_dir, env)
    assert code == 0, output
    assert not bad, output
    assert output.startswith("ok:"), output
    checked.log_verify = output.strip()
    first = scrub(data_dir, env)
    checked.scrub_first = {
        "verdict": first.verdict,
        **{column: first.total(column) for column in ("missing", "corrupt", "unavailable", "repaired", "orphaned")},
    }
    passes = [first]
    # Repair, then a pass that must find nothing left. A third pass is allowed for copies of blobs a
    # pass re-indexed (found at quorum on the backends but not in the index): scrub checks those
    # only on its next pass. Writes reported failed can leave such copies (a timeout, a reset).
    while expect_repair and (len(passes) == 1 or (len(passes) == 2 and passes[-1].total("repaired"))):
        passes.append(scrub(data_dir, env))
    checked.scrub_passes = len(passes)
    final = passes[-1]
    assert final.returncode == 0, final.output
    for column in ("missing", "corrupt", "unavailable"):
        before = "\n".join(earlier.output for earlier in passes[:-1])
        assert final.total(column) == 0, f"scrub found {column} copies:\n{final.output}\nbefore:\n{before}"
    assert final.total("orphaned") <= allowed_orphans, final.output
    if not expect_repair:
        assert first.total("repaired") == 0, first.output
    checked.offline_seconds = time.monotonic() - began
    return checked


def check_invariants(
    server: StaveServer,
    outcome: Outcome,
    *,
    env: dict[str, str] | None = None,
    expect_repair: bool = False,
    allowed_orphans: int = 0,
    earlier: Iterable[str] = (),
) -> Checked:
    """Every invariant: online against the running server, then offline after stopping it."""
    checked = check_online(server.url, outcome, earlier=earlier)
    server.stop()
    return check_offline(
        server.data_dir,
        {**DRILL_ENV, **(env or {})},
        expect_repair=expect_repair,
        allowed_orphans=allowed_orphans,
        checked=checked,
    )


# --- figures ----------------------------------------------------------------------------------


def record(name: str, figures: dict[str, Any]) -> None:
    """Upsert this drill's figures into bench/results/drills.json, only under ``make drill``."""
    if not long_drills():
        return
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with open(REPORT, "a+") as handle:  # locked: drills run by parallel workers write one file
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        current: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            current = json.loads(handle.read() or "{}")
        current[name] = {"recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(current, indent=2, sort_keys=True) + "\n")


# --- real backends ----------------------------------------------------------------------------


def new_database(postgres: PostgresServer) -> str:
    """A database of its own on the shared PostgreSQL server; its URL."""
    name = f"stave_drill_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    return postgres.dsn.rsplit("/", 1)[0] + f"/{name}"


def s3_url(s3: SeaweedServer, bucket: str, *, timeout: float = 3.0) -> str:
    return (
        f"s3://{bucket}/events?endpoint={s3.endpoint_url}&region={s3.region}"
        f"&access_key={s3.access_key}&secret_key={s3.secret_key}&create_bucket=1&timeout={timeout}"
    )


def s3_objects(s3: SeaweedServer, bucket: str) -> dict[str, str]:
    """Event id -> object key of every event object in the bucket."""
    import boto3

    client = boto3.client("s3", **s3.boto3_kwargs)
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1].removesuffix(".json")
            if len(name) == 64:
                found[name] = item["Key"]
    return found


def local_objects(root: Path) -> dict[str, Path]:
    """Event id -> file of every event copy under a local backend (temporaries excluded)."""
    return {
        path.name.removesuffix(".json"): path
        for path in (root / "events").glob("*/*/*.json")
        if not path.name.startswith(".tmp-")
    }
