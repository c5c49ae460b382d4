"""The log: appends to 1,000,000 entries, proofs and roots at that size, beside raw SQLite work.

Goals (issue: the log), each against a baseline measured in the same run:
- append throughput to 1M entries (batches of 1,000 ids per ``append_ids``, the sequencer's
  group commit) at least 50% of a raw batched INSERT of the same rows: the same
  ``log_entries`` rows, tree nodes and ``log_state`` row, into the same tables in a separate
  SQLite file with the same pragmas (WAL, ``synchronous=FULL``), one transaction per batch,
  with the plain ``sqlite3`` module's ``executemany``. Batches alternate between the two, so a
  noisy moment (or a WAL checkpoint of the other file) hits both alike;
- an inclusion proof at 1M entries reads at most 2·⌈log2 n⌉ stored hashes (counted by the
  log's ``node_reads``) and costs at most 3x that many raw primary-key SELECTs, measured as
  one ``sqlite3`` single-row SELECT on ``log_nodes`` per hash the same proof reads.

Also reported, without goals: consistency proofs to the full size, ``root_at`` of random
sizes and the signing of a checkpoint. ``STAVE_BENCH_LOG_SIZE`` sets the size (default 1M).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from stave.db import open_database
from stave.event import EventType, PrivateKey
from stave.log import merkle
from stave.log.note import Signer
from stave.log.sequencer import Log, event_leaf

SIZE = int(os.environ.get("STAVE_BENCH_LOG_SIZE", "1000000"))
BATCH = 1_000  # ids per append_ids call: one transaction, one fsync
PROOFS = 2_000  # random leaves whose inclusion proof is timed
SAMPLES = 500  # consistency proofs and roots timed
LEVEL_SHIFT = 48  # log_nodes.node = level·2^48 + index (see stave.db.schema)
LOG_TABLES = ("log_entries", "log_nodes", "log_state")
AUTHORS = [PrivateKey(hashlib.sha256(b"bench author %d" % i).digest()).public_key.to_string() for i in range(256)]
TYPES = [EventType.VOTE.name, EventType.LIKE.name, EventType.ADD_CLAIM.name, EventType.DISCUSS.name]


def event_id(number: int) -> str:
    return hashlib.sha256(number.to_bytes(8, "big")).hexdigest()


def batch_items(start: int, count: int) -> list[tuple[str, str | None, str | None, int | None]]:
    return [
        (event_id(n), TYPES[n % len(TYPES)], AUTHORS[n % len(AUTHORS)], 1_758_000_000 + n)
        for n in range(start, start + count)
    ]


class RawLog:
    """The same rows the log writes, written with plain ``sqlite3``: the append baseline."""

    def __init__(self, path: Path, schema: list[str]) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            self.connection.execute(f"PRAGMA {pragma}")
        for statement in schema:
            self.connection.execute(statement)
        self.frontier: list[bytes] = []
        self.size = 0

    def rows(
        self, items: list[tuple[str, str | None, str | None, int | None]]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[int, bytes]], tuple[int, bytes, int]]:
        """The batch's rows, made before the timed insert: entries, tree nodes and the state row."""
        now = time.time_ns() // 1_000_000
        entries = [(self.size + offset, *item, now) for offset, item in enumerate(items)]
        leaves = [event_leaf(item[0]) for item in items]
        self.frontier, self.size, nodes = merkle.append(self.frontier, self.size, leaves)
        node_rows = [((level << LEVEL_SHIFT) | index, digest) for level, index, digest in nodes]
        return entries, node_rows, (self.size, merkle.root_from_frontier(self.frontier), now)

    def insert(
        self, entries: list[tuple[Any, ...]], nodes: list[tuple[int, bytes]], state: tuple[int, bytes, int]
    ) -> None:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(
            "INSERT INTO log_entries (seq, event_id, event_type, author, created_at, sequenced_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            entries,
        )
        cursor.executemany("INSERT INTO log_nodes (node, hash) VALUES (?, ?)", nodes)
        cursor.execute(
            "INSERT INTO log_state (id, size, root, updated_at) VALUES (1, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET size = excluded.size, root = excluded.root,"
            " updated_at = excluded.updated_at",
            state,
        )
        cursor.execute("COMMIT")


def _log_schema(path: Path) -> list[str]:
    """The DDL of the log's tables and their indexes, as the migrations created them."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN (?, ?, ?) AND sql IS NOT NULL"
            " ORDER BY type = 'index', name",
            LOG_TABLES,
        ).fetchall()
    connection.close()
    return [sql for (sql,) in rows]


def _counts(path: Path) -> dict[str, Any]:
    connection = sqlite3.connect(path)
    try:
        counts: dict[str, Any] = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
            for table in LOG_TABLES
        }
        counts["root"] = connection.execute("SELECT root FROM log_state WHERE id = 1").fetchone()[0].hex()
        return counts
    finally:
        connection.close()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _append(console: Console, log: Log, raw: RawLog, size: int) -> dict[str, Any]:
    log_seconds: list[float] = []
    raw_seconds: list[float] = []
    checkpoints: list[dict[str, float]] = []
    done = 0
    started = time.perf_counter()
    while done < size:
        items = batch_items(done, min(BATCH, size - done))
        entries, nodes, state = raw.rows(items)
        runs_first = (done // BATCH) % 2 == 0  # alternate which one goes first
        for which in ("log", "raw") if runs_first else ("raw", "log"):
            start = time.perf_counter()
            if which == "log":
                log.append_ids(items)
            else:
                raw.insert(entries, nodes, state)
            (log_seconds if which == "log" else raw_seconds).append(time.perf_counter() - start)
        done += len(items)
        if done % (size // 10 or size) == 0 or done == size:
            since = done - (checkpoints[-1]["entries"] if checkpoints else 0)  # entries since the last report
            window = len(log_seconds) - int(checkpoints[-1]["batches"] if checkpoints else 0)
            point = {
                "entries": done,
                "batches": len(log_seconds),
                "log_per_s": since / sum(log_seconds[-window:]),
                "raw_per_s": since / sum(raw_seconds[-window:]),
            }
            checkpoints.append(point)
            console.print(
                f"  log at {done:>9,} entries: {point['log_per_s']:>9,.0f}/s (raw INSERT {point['raw_per_s']:,.0f}/s)"
                f" [{time.perf_counter() - started:.0f} s]"
            )
    return {
        "entries": size,
        "batch": BATCH,
        "log_seconds": sum(log_seconds),
        "raw_seconds": sum(raw_seconds),
        "log_per_s": size / sum(log_seconds),
        "raw_per_s": size / sum(raw_seconds),
        "log_batch_p50_ms": statistics.median(log_seconds) * 1e3,
        "log_batch_p99_ms": _pct(log_seconds, 0.99) * 1e3,
        "raw_batch_p50_ms": statistics.median(raw_seconds) * 1e3,
        "raw_batch_p99_ms": _pct(raw_seconds, 0.99) * 1e3,
        "by_size": checkpoints,
    }


def _proofs(log: Log, path: Path, size: int) -> dict[str, Any]:
    """Inclusion proofs of random leaves, each beside one raw SELECT per stored hash it reads."""
    rng = random.Random(9162)
    indices = rng.sample(range(size), min(PROOFS, size))
    root = log.root()
    raw = sqlite3.connect(path, isolation_level=None)
    select = "SELECT hash FROM log_nodes WHERE node = ?"
    for index in indices[:50]:  # warm both: the pool's connection, the statement caches
        log.inclusion_proof(index, size)
        for level, node in merkle.inclusion_plan(index, size).node_ids:
            raw.execute(select, ((level << LEVEL_SHIFT) | node,)).fetchone()
    proof_seconds: list[float] = []
    raw_seconds: list[float] = []
    reads: list[int] = []
    for number, index in enumerate(indices):
        keys = [(level << LEVEL_SHIFT) | node for level, node in merkle.inclusion_plan(index, size).node_ids]
        before = log.node_reads
        timings: dict[str, float] = {}
        for which in ("proof", "raw") if number % 2 else ("raw", "proof"):
            start = time.perf_counter()
            if which == "proof":
                proof = log.inclusion_proof(index, size)
            else:
                for key in keys:
                    found = raw.execute(select, (key,)).fetchone()
                    assert found is not None
            timings[which] = time.perf_counter() - start
        reads.append(log.node_reads - before)
        proof_seconds.append(timings["proof"])
        raw_seconds.append(timings["raw"])
        if number % 20 == 0:  # spot-check that the proofs are right (untimed)
            merkle.verify_inclusion(event_leaf(event_id(index)), index, size, proof, root)
    raw.close()
    return {
        "proofs": len(indices),
        "reads_max": max(reads),
        "reads_mean": statistics.fmean(reads),
        "reads_min": min(reads),
        "proof_hashes_max": max(merkle.inclusion_proof_size(index, size) for index in indices),
        "median_us": statistics.median(proof_seconds) * 1e6,
        "fastest_us": min(proof_seconds) * 1e6,
        "p99_us": _pct(proof_seconds, 0.99) * 1e6,
        "raw_selects_median_us": statistics.median(raw_seconds) * 1e6,
        "raw_selects_fastest_us": min(raw_seconds) * 1e6,
        "raw_select_each_us": statistics.median(t / n for t, n in zip(raw_seconds, reads, strict=True)) * 1e6,
    }


def _consistency_and_roots(log: Log, size: int) -> dict[str, Any]:
    rng = random.Random(6962)
    root = log.root()
    olds = [rng.randrange(1, size) for _ in range(min(SAMPLES, size - 1))] if size > 1 else []
    consistency_seconds: list[float] = []
    consistency_reads: list[int] = []
    for number, old in enumerate(olds):
        before = log.node_reads
        start = time.perf_counter()
        proof = log.consistency_proof(old, size)
        consistency_seconds.append(time.perf_counter() - start)
        consistency_reads.append(log.node_reads - before)
        if number % 20 == 0:
            merkle.verify_consistency(old, size, log.root_at(old), root, proof)
    root_seconds: list[float] = []
    root_reads: list[int] = []
    for at in [size] + [rng.randrange(1, size + 1) for _ in range(SAMPLES - 1)]:
        before = log.node_reads
        start = time.perf_counter()
        log.root_at(at)
        root_seconds.append(time.perf_counter() - start)
        root_reads.append(log.node_reads - before)
    assert log.root_at(size) == root, "root_at(size) differs from the stored root"
    start = time.perf_counter()
    checkpoint = log.publish_checkpoint()
    publish = time.perf_counter() - start
    assert (checkpoint.size, checkpoint.root) == (size, root)
    figures: dict[str, Any] = {
        "root_at": {
            "samples": len(root_seconds),
            "median_us": statistics.median(root_seconds) * 1e6,
            "p99_us": _pct(root_seconds, 0.99) * 1e6,
            "reads_max": max(root_reads),
            "reads_mean": statistics.fmean(root_reads),
        },
        "publish_checkpoint_ms": publish * 1e3,
    }
    if olds:
        figures["consistency"] = {
            "samples": len(olds),
            "median_us": statistics.median(consistency_seconds) * 1e6,
            "p99_us": _pct(consistency_seconds, 0.99) * 1e6,
            "reads_max": max(consistency_reads),
            "reads_mean": statistics.fmean(consistency_reads),
        }
    return figures


def run(console: Console, *, size: int = SIZE) -> list[Record]:
    figures: dict[str, Any] = {"size": size, "batch": BATCH}
    bound = 2 * math.ceil(math.log2(size)) if size > 1 else 0
    with tempfile.TemporaryDirectory(prefix="stave-bench-log-") as temp:
        root = Path(temp)
        log_path, raw_path = root / "log.db", root / "raw.db"
        database = open_database(f"sqlite:///{log_path}")
        log = Log(database, Signer("bench.stave.example/log", hashlib.sha256(b"bench log key").digest()))
        raw = RawLog(raw_path, _log_schema(log_path))
        console.print(f"log: appending {size:,} entries in batches of {BATCH:,}, beside raw batched INSERTs")
        figures["append"] = _append(console, log, raw, size)
        raw.connection.close()
        figures["rows"] = {"log": _counts(log_path), "raw": _counts(raw_path)}
        assert figures["rows"]["log"] == figures["rows"]["raw"], f"the baseline wrote other rows: {figures['rows']}"
        figures["bytes"] = {name: sum(p.stat().st_size for p in root.glob(f"{name}.db*")) for name in ("log", "raw")}
        figures["inclusion"] = _proofs(log, log_path, size)
        figures.update(_consistency_and_roots(log, size))
        database.close()
    append, inclusion = figures["append"], figures["inclusion"]
    figures["inclusion"]["reads_bound"] = bound
    records = [
        goal_record(
            "log.append_throughput",
            append["log_per_s"],
            "entries/s",
            ">=0.5",
            baseline="raw batched INSERT of the same rows",
            baseline_value=append["raw_per_s"],
        ),
        goal_record("log.proof_reads_1m", inclusion["reads_max"], "hashes", f"<={bound}"),
        goal_record(
            "log.proof_latency_1m",
            inclusion["median_us"],
            "us",
            "<=3",
            baseline=f"{inclusion['reads_mean']:.1f} raw indexed SELECTs (sqlite3, one per hash read)",
            baseline_value=inclusion["raw_selects_median_us"],
        ),
    ]
    _print_table(console, figures)
    write_results("log", figures)
    upsert_summary(records)
    print_records(f"log goals ({size:,} entries)", records, console)
    return records


def _print_table(console: Console, figures: dict[str, Any]) -> None:
    append, inclusion = figures["append"], figures["inclusion"]
    table = Table(title=f"log at {figures['size']:,} entries (batches of {figures['batch']:,} ids)")
    for column in ("operation", "figure", "stored hashes read", "baseline", "ratio"):
        table.add_column(column)
    table.add_row(
        "append (whole run)",
        f"{append['log_per_s']:,.0f} entries/s in {append['log_seconds']:.1f} s",
        "-",
        f"raw batched INSERT {append['raw_per_s']:,.0f} entries/s in {append['raw_seconds']:.1f} s",
        f"{append['log_per_s'] / append['raw_per_s']:.2f}x",
    )
    table.add_row(
        "append, one batch",
        f"p50 {append['log_batch_p50_ms']:.1f} ms, p99 {append['log_batch_p99_ms']:.1f} ms",
        "-",
        f"p50 {append['raw_batch_p50_ms']:.1f} ms, p99 {append['raw_batch_p99_ms']:.1f} ms",
        f"{append['log_batch_p50_ms'] / append['raw_batch_p50_ms']:.2f}x",
    )
    table.add_row(
        f"inclusion proof ({inclusion['proofs']:,} random leaves)",
        f"p50 {inclusion['median_us']:.0f} µs, p99 {inclusion['p99_us']:.0f} µs",
        f"max {inclusion['reads_max']} (bound {inclusion['reads_bound']}), mean {inclusion['reads_mean']:.1f}",
        f"{inclusion['reads_mean']:.1f} raw SELECTs p50 {inclusion['raw_selects_median_us']:.0f} µs"
        f" ({inclusion['raw_select_each_us']:.1f} µs each)",
        f"{inclusion['median_us'] / inclusion['raw_selects_median_us']:.2f}x",
    )
    if "consistency" in figures:
        consistency = figures["consistency"]
        table.add_row(
            f"consistency proof to {figures['size']:,} ({consistency['samples']} random old sizes)",
            f"p50 {consistency['median_us']:.0f} µs, p99 {consistency['p99_us']:.0f} µs",
            f"max {consistency['reads_max']}, mean {consistency['reads_mean']:.1f}",
            "-",
            "-",
        )
    roots = figures["root_at"]
    table.add_row(
        f"root_at ({roots['samples']} random sizes)",
        f"p50 {roots['median_us']:.0f} µs, p99 {roots['p99_us']:.0f} µs",
        f"max {roots['reads_max']}, mean {roots['reads_mean']:.1f}",
        "-",
        "-",
    )
    table.add_row("publish_checkpoint", f"{figures['publish_checkpoint_ms']:.1f} ms", "-", "-", "-")
    console.print(table)
