"""Crash tests of the sequencer: real processes SIGKILLed at random moments during a stream of appends.

After every kill a new process continues on the same database; at the end the tree must be
consistent with every checkpoint ever published. The workers (tests/log/sequencer_worker.py)
print a line per acknowledged batch, with the sequence number of every id, and one per
checkpoint; what a worker printed is what a client was told, so it must hold forever:

1. every acknowledged id is in the log exactly once, at the number it was acknowledged with;
2. ``Log.verify()`` is ok (stored nodes, root, every checkpoint's signature and root);
3. every pair of checkpoints, printed or stored, is consistent by the log's own proofs, and a
   printed checkpoint is the stored one of its size, verbatim;
4. acknowledged ids have inclusion proofs against the latest checkpoints.

Ids a killed worker had committed but not yet acknowledged may be in the log: that is allowed
(the client was never told, and a retry finds them with their number). Ids it had submitted
but not committed are simply absent, and are submitted again by the next worker, which always
starts its stream at the end of the last acknowledged batch.

The kill moments, batch sizes and re-submissions come from ``STAVE_CRASH_SEED`` (a fixed default);
where the kill lands between the statements still depends on timing, run to run.
"""

from __future__ import annotations

import base64
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from stave.db import open_database
from stave.log import merkle
from stave.log.note import open_checkpoint
from stave.log.sequencer import Log, SignedCheckpoint, event_leaf
from tests.log.sequencer_worker import SIGNER, stream_id

WORKER = Path(__file__).with_name("sequencer_worker.py")
ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("STAVE_CRASH_SEED", "20250611"))
MAX_BATCH = 50  # the worker's largest batch: at most this many ids are ever in flight per stream
READY_TIMEOUT = 60.0
SHARED = 300  # ids of the stream every PostgreSQL worker also submits


@dataclass
class History:
    """Everything the workers acknowledged, checked as it arrives and against the log at the end."""

    seeds: str
    seqs: dict[str, int] = field(default_factory=dict)  # event id -> the number every ack reported
    next_index: dict[str, int] = field(default_factory=dict)  # stream -> end of its last acknowledged batch
    checkpoints: dict[int, tuple[bytes, str]] = field(default_factory=dict)  # printed: size -> (root, note)
    found_unacknowledged: int = 0  # fresh ids a restarted worker found already sequenced (committed, never acked)
    kills: int = 0
    killed_before_ready: int = 0

    def acknowledge(self, event_id: str, seq: int) -> None:
        first = self.seqs.setdefault(event_id, seq)
        assert first == seq, f"{self.seeds}: id {event_id} was acknowledged at seq {first}, later at {seq}"


class Worker:
    """One sequencer_worker.py process; a thread drains its stdout so it never blocks on the pipe."""

    def __init__(self, tmp_path: Path, url: str, stream: str, start: int, seed: str, extra: list[str]) -> None:
        self.stream, self.start, self.seed = stream, start, seed
        self.stderr_path = tmp_path / f"worker-{seed}.err"
        command = [sys.executable, str(WORKER), "--database", url, "--stream", stream, "--start", str(start)]
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [*command, "--seed", seed, *extra],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                cwd=ROOT,
            )
        self.started = time.monotonic()
        self.lines: list[str] = []
        self.ready = threading.Event()
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: IO[str]) -> None:
        with stdout:
            for line in stdout:
                if not line.endswith("\n"):
                    break  # cut by the kill mid-write: never acknowledged
                self.lines.append(line.rstrip("\n"))
                if line.startswith("ready "):
                    self.ready.set()
        self.ready.set()  # ended: whoever waits must look at the exit

    def kill(self) -> list[str]:
        """SIGKILL, and the complete lines it printed; fails if it had died on its own."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        if code != -signal.SIGKILL:
            pytest.fail(f"worker {self.seed} exited by itself ({code}):\n{self.stderr_path.read_text()}")
        return list(self.lines)


def collect(history: History, worker: Worker, lines: list[str]) -> None:
    """Check one killed worker's acknowledgements against everything acknowledged before."""
    history.kills += 1
    if not lines or not lines[0].startswith("ready "):
        history.killed_before_ready += 1
        assert not lines, f"{history.seeds}: {lines[:3]}"
        return
    ready_size = int(lines[0].split()[1])
    expected = worker.start
    covered = 0  # one past the highest number this worker was told: its later checkpoints cover it
    for line in lines[1:]:
        kind, *rest = line.split(" ")
        if kind == "acked":
            first, count, seqs, old, shared = int(rest[0]), int(rest[1]), rest[2], rest[3], rest[4]
            assert first == expected, f"{history.seeds}: worker {worker.seed} acked {first}, expected {expected}"
            numbers = [int(seq) for seq in seqs.split(",")]
            assert len(numbers) == count
            for index, seq in enumerate(numbers, start=first):
                # A fresh id already below the size the worker started at was committed by a killed worker
                # that never acknowledged it; this worker's retry found it with the number it had got then.
                history.found_unacknowledged += seq < ready_size
                history.acknowledge(stream_id(worker.stream, index), seq)
            for text, stream in ((old, worker.stream), (shared, "shared")):
                for pair in [] if text == "-" else text.split(","):
                    index, seq = (int(part) for part in pair.split(":"))
                    history.acknowledge(stream_id(stream, index), seq)
                    covered = max(covered, seq + 1)
            covered = max(covered, *(seq + 1 for seq in numbers))
            expected = first + count
            history.next_index[worker.stream] = expected
        else:
            assert kind == "checkpoint", line
            size, root, note = int(rest[0]), bytes.fromhex(rest[1]), base64.b64decode(rest[2]).decode()
            assert size >= covered, (
                f"{history.seeds}: checkpoint {size} published after acknowledging seq {covered - 1}"
            )
            printed = history.checkpoints.setdefault(size, (root, note))
            assert printed == (root, note), f"{history.seeds}: two different checkpoints of size {size} were printed"


def check_log(log: Log, history: History, rng: random.Random) -> int:
    """The final assertions (1)–(4); returns how many ids are in the log but were never acknowledged."""
    size = log.size()
    entries = log.entries(limit=size + 1)
    by_id = {entry.event_id: entry.seq for entry in entries}
    assert len(by_id) == len(entries) == size, f"{history.seeds}: an id is in the log twice, or the size is off"
    assert [entry.seq for entry in entries] == list(range(size)), f"{history.seeds}: a gap or a repeated number"

    # (1) Every acknowledged id, exactly once, at the number it was acknowledged with.
    lost = {event_id: seq for event_id, seq in history.seqs.items() if by_id.get(event_id) != seq}
    assert not lost, f"{history.seeds}: acknowledged ids missing or moved: {list(lost.items())[:5]}"
    # (5) The rest: committed by a worker killed before it printed the ack. Allowed, but only ids of a
    # stream's last in-flight batch (past its last acknowledged batch by less than one batch), or shared ids.
    allowed = {stream_id("shared", index) for index in range(SHARED)}
    for stream, end in history.next_index.items():
        allowed.update(stream_id(stream, index) for index in range(end + MAX_BATCH))
    unacknowledged = set(by_id) - set(history.seqs)
    assert unacknowledged <= allowed, f"{history.seeds}: ids in the log that no worker could have submitted"
    # A stream's ids are numbered in stream order: a retry never re-orders what a killed worker committed.
    for stream in history.next_index:
        seqs = [by_id[stream_id(stream, i)] for i in range(size) if stream_id(stream, i) in by_id]
        assert seqs == sorted(seqs), f"{history.seeds}: stream {stream} is out of order in the log"

    # (2) The stored tree recomputes from the stored ids; checkpoints are signed and match it.
    report = log.verify()
    assert report.ok, f"{history.seeds}: {report}"

    # (3) Every checkpoint ever printed is stored verbatim; every pair of them is consistent.
    stored = {checkpoint.size: checkpoint for checkpoint in log.checkpoints()}
    for size_printed, (root, note) in history.checkpoints.items():
        assert size_printed in stored, f"{history.seeds}: printed checkpoint {size_printed} is not stored"
        assert (stored[size_printed].root, stored[size_printed].note) == (root, note), history.seeds
    final = log.publish_checkpoint()  # covers every acknowledged id: the latest checkpoint of all
    assert final.size == size
    every = sorted({**stored, final.size: final}.values(), key=lambda c: c.size)
    for checkpoint in every:
        opened = open_checkpoint(checkpoint.note, [SIGNER.verifier()], SIGNER.name)
        assert (opened.size, opened.root_hash) == (checkpoint.size, checkpoint.root)
    for i, old in enumerate(every):
        for new in every[i:]:
            merkle.verify_consistency(old.size, new.size, old.root, new.root, log.consistency_proof(old.size, new.size))
    # An independent recomputation (RFC 9162's recursive definition) for a few of them.
    leaves = [event_leaf(entry.event_id) for entry in entries]
    for checkpoint in [every[0], *rng.sample(every, min(3, len(every))), every[-1]]:
        assert merkle.reference_root(leaves[: checkpoint.size]) == checkpoint.root, history.seeds

    # (4) Inclusion of a sample of acknowledged ids in the final checkpoint and in the last one a worker published.
    last_published: SignedCheckpoint = stored[max(stored)] if stored else final
    for event_id in rng.sample(sorted(history.seqs), min(200, len(history.seqs))):
        seq = history.seqs[event_id]
        for checkpoint in (final, last_published):
            if seq < checkpoint.size:
                proof = log.inclusion_proof(seq, checkpoint.size)
                merkle.verify_inclusion(event_leaf(event_id), seq, checkpoint.size, proof, checkpoint.root)
    return len(unacknowledged)


def crash_loop(tmp_path: Path, url: str, streams: list[str], kills_per_stream: int, extra: list[str]) -> History:
    """Run one worker per stream at once; SIGKILL each at random moments and restart it, until each
    stream's worker was killed ``kills_per_stream`` times."""
    rng = random.Random(SEED)
    history = History(seeds=f"STAVE_CRASH_SEED={SEED}")
    runs = 0

    def start_worker(stream: str, start: int) -> Worker:
        nonlocal runs
        runs += 1
        return Worker(tmp_path, url, stream, start, f"{SEED}-{stream}-{runs}", extra)

    running: dict[str, tuple[Worker, float | None]] = {}
    killed = dict.fromkeys(streams, 0)
    try:
        while any(count < kills_per_stream for count in killed.values()):
            for stream in streams:
                if stream not in running and killed[stream] < kills_per_stream:
                    # Continue the stream at the end of its last acknowledged batch, re-submitting whatever
                    # was in flight. The kill deadline: now and then during start-up (imports, connecting,
                    # migrations); otherwise set below, a moment into its stream of appends.
                    worker = start_worker(stream, history.next_index.get(stream, 0))
                    early = rng.random() < 0.15
                    running[stream] = (worker, worker.started + rng.uniform(0.0, 0.8) if early else None)
            now = time.monotonic()
            # A worker's countdown starts only once every running worker is appending: each kill then lands
            # while the others append too (a restart takes longer than a countdown).
            all_ready = all(worker.ready.is_set() for worker, _ in running.values())
            for stream, (worker, deadline) in list(running.items()):
                if deadline is None:
                    if worker.ready.is_set() and worker.process.poll() is not None:
                        worker.kill()  # died by itself: fails with its stderr
                    if all_ready:
                        deadline = now + rng.uniform(0.05, 0.6)  # somewhere in the stream of appends
                        running[stream] = (worker, deadline)
                    elif not worker.ready.is_set() and now - worker.started > READY_TIMEOUT:
                        pytest.fail(f"worker {worker.seed} not ready in {READY_TIMEOUT} s")
                    continue
                if now >= deadline:
                    collect(history, worker, worker.kill())
                    killed[stream] += 1
                    del running[stream]
            time.sleep(0.002)
    finally:
        for worker, _ in running.values():
            if worker.process.poll() is None:
                worker.process.kill()
            worker.process.wait()
    return history


def report(history: History, size: int, checkpoints: int, unacknowledged: int, elapsed: float) -> None:
    print(
        f"\n{history.seeds}: {history.kills} kills ({history.killed_before_ready} before ready), log size {size}, "
        f"{len(history.seqs)} ids acknowledged, {checkpoints} checkpoints, {history.found_unacknowledged} ids "
        f"committed unacknowledged and found again by a retry, {unacknowledged} in the log never acknowledged, "
        f"{elapsed:.1f} s"
    )


@pytest.mark.slow
def test_sigkilled_sequencer_on_sqlite_keeps_every_ack_and_checkpoint(tmp_path: Path) -> None:
    began = time.monotonic()
    url = f"sqlite:///{tmp_path}/stave.db"
    history = crash_loop(tmp_path, url, ["solo"], kills_per_stream=10, extra=["--checkpoint", "0.05"])
    log = Log(open_database(url), SIGNER)
    try:
        unacknowledged = check_log(log, history, random.Random(SEED))
        # One writer, one stream: the log is exactly the stream's prefix, each id at its stream index.
        size = log.size()
        assert log.entry_ids(0, size) == [stream_id("solo", i) for i in range(size)], history.seeds
        acknowledged_end = history.next_index.get("solo", 0)
        assert acknowledged_end <= size <= acknowledged_end + MAX_BATCH, history.seeds  # a whole batch may be in flight
        report(history, size, len(log.checkpoints()), unacknowledged, time.monotonic() - began)
    finally:
        log.database.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_sigkilled_sequencers_on_postgresql_keep_every_ack_and_checkpoint(postgres_server, tmp_path: Path) -> None:
    began = time.monotonic()
    name = f"stave_crash_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    url = postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    # Two appenders at once, each with its own stream, both also submitting ids of a shared stream.
    history = crash_loop(
        tmp_path, url, ["a", "b"], kills_per_stream=8, extra=["--checkpoint", "0.05", "--shared", str(SHARED)]
    )
    log = Log(open_database(url), SIGNER)
    try:
        unacknowledged = check_log(log, history, random.Random(SEED))  # includes: numbers 0..size-1, each once
        # The two really appended at once: their batches interleave in the log, many times over.
        size = log.size()
        owner = {stream_id(s, i): s for s in ("a", "b") for i in range(history.next_index.get(s, 0) + MAX_BATCH)}
        order = [owner[event_id] for event_id in log.entry_ids(0, size) if event_id in owner]
        switches = sum(one != other for one, other in itertools.pairwise(order))
        assert switches >= 8, f"{history.seeds}: the two workers' batches alternate only {switches} times"
        report(history, size, len(log.checkpoints()), unacknowledged, time.monotonic() - began)
        print(f"the two workers' batches alternate {switches} times in the log")
    finally:
        log.database.close()
