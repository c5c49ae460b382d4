"""Physical limits, measured in the same run, and every stave figure beside the limit that bounds it.

The limits: raw coincurve operations on secp256k1 (ECDSA verify and public-key recovery, which
a K1 signature needs; BIP-340 Schnorr verify, which the Nostr peer needs), raw SHA-256 of the
same event bytes, a raw write + fsync of one small file, a batch of small files made durable by
one ``syncfs`` (how the file driver commits a group), a batch of events appended to one file and
fsynced once (the least a group commit of the default SQLite driver can cost), raw Redis SET and GET round trips against
a real ``redis-server`` (``tests/servers``), and the trivial HTTP endpoint of the same server
stack (``GET /log/vkey``, from the latest ``bench/server.py`` results, measured on ``stave
serve`` itself).

Then the stave figures of the other benchmarks' latest results (``bench/results/*.json``) are
printed beside these, as the share of the limit reached: stave's rate over the limit's rate, or
the limit's time over stave's time (1.0 would be stave running at the limit). Run this after the
others (``python -m bench`` does): it reads their results. No goal records: the goals are in
the other benchmarks; these figures explain them.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import coincurve
import redis
from rich.console import Console
from rich.table import Table
from tests.servers import RedisServer
from tests.store.events import event

from bench.harness import RESULTS, Record, compare, write_results

FSYNC_FILES = 200  # files written and fsynced one by one
SYNCFS_BATCHES = 10  # batches of SYNCFS_BATCH files, one syncfs each
SYNCFS_BATCH = 512  # the largest group commit (server.max_batch)
REDIS_OPS = 2_000  # round trips of each of SET and GET


def _crypto(data: bytes) -> dict[str, float]:
    """Seconds per call (fastest of interleaved rounds) of the raw operations on the event's bytes."""
    key = coincurve.PrivateKey(hashlib.sha256(b"bench limits").digest())
    digest = hashlib.sha256(data).digest()
    der = key.sign(digest, hasher=None)
    recoverable = key.sign_recoverable(digest, hasher=None)
    public = key.public_key
    schnorr = key.sign_schnorr(digest)
    xonly = key.public_key_xonly
    timings = compare(
        {
            "sha256": lambda: hashlib.sha256(data).digest(),
            "ecdsa_verify": lambda: public.verify(der, digest, hasher=None),
            "ecdsa_recover": lambda: coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None),
            "schnorr_verify": lambda: xonly.verify(schnorr, digest),
        },
        rounds=21,
    )
    return {name: fastest for name, (fastest, _) in timings.items()}


def _syncfs() -> Any:
    function = ctypes.CDLL(None, use_errno=True).syncfs
    function.argtypes = [ctypes.c_int]
    return function


def _disk(data: bytes, directory: Path) -> dict[str, float]:
    """Write + fsync of one file at a time, and batches made durable with one syncfs."""
    one: list[float] = []
    for number in range(FSYNC_FILES):
        started = time.perf_counter()
        fd = os.open(directory / f"one-{number}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        one.append(time.perf_counter() - started)
    syncfs = _syncfs()
    batches: list[float] = []
    root = os.open(directory, os.O_RDONLY)
    try:
        for batch in range(SYNCFS_BATCHES):
            started = time.perf_counter()
            for number in range(SYNCFS_BATCH):
                with open(directory / f"batch-{batch}-{number}", "xb") as file:
                    file.write(data)
            if syncfs(root) != 0:
                raise OSError(ctypes.get_errno(), "syncfs failed")
            batches.append(time.perf_counter() - started)
    finally:
        os.close(root)
    appends: list[float] = []
    with open(directory / "append", "ab") as log:
        for _ in range(SYNCFS_BATCHES):
            started = time.perf_counter()
            log.write(data * SYNCFS_BATCH)
            log.flush()
            os.fdatasync(log.fileno())
            appends.append(time.perf_counter() - started)
    return {
        "append_fsync_batch_median_s": statistics.median(appends),
        "append_fsync_events_per_s": SYNCFS_BATCH / statistics.median(appends),
        "write_fsync_median_s": statistics.median(one),
        "write_fsync_per_s": 1 / statistics.median(one),
        "syncfs_batch": SYNCFS_BATCH,
        "syncfs_batch_median_s": statistics.median(batches),
        "syncfs_files_per_s": SYNCFS_BATCH / statistics.median(batches),
    }


def _redis(data: bytes) -> dict[str, float]:
    """Round trips of SET and GET of the event's bytes on one connection to a real redis-server."""
    with RedisServer() as server:
        client = redis.Redis(host=server.host, port=server.port)
        try:
            sets: list[float] = []
            gets: list[float] = []
            for number in range(REDIS_OPS):
                started = time.perf_counter()
                client.set(f"event:{number}", data)
                sets.append(time.perf_counter() - started)
            for number in range(REDIS_OPS):
                started = time.perf_counter()
                found = client.get(f"event:{number}")
                gets.append(time.perf_counter() - started)
                assert found == data
        finally:
            client.close()
    return {
        "set_median_s": statistics.median(sets),
        "get_median_s": statistics.median(gets),
        "set_per_s": 1 / statistics.median(sets),
        "get_per_s": 1 / statistics.median(gets),
    }


def _latest(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _trivial_http() -> dict[str, Any] | None:
    server = _latest("server")
    if server is None:
        return None
    phases = server["figures"]["phases"]
    return {
        "requests_per_s_1": phases["trivial_1"]["requests_per_s"],
        "requests_per_s_32": phases["trivial_32"]["requests_per_s"],
        "measured_at": server["measured_at"],
    }


def _pairs(limits: dict[str, Any]) -> list[dict[str, Any]]:
    """Each stave figure of the latest results beside the limit that bounds it."""
    crypto, disk, cache, http = limits["crypto_s"], limits["disk"], limits["redis"], limits["trivial_http"]
    cores = os.cpu_count() or 1
    pairs: list[dict[str, Any]] = []

    def pair(
        figure: str, value: float, unit: str, limit: str, bound: float, share: float, source: str, bound_unit: str = ""
    ) -> None:
        pairs.append(
            {
                "figure": figure,
                "value": value,
                "unit": unit,
                "limit": limit,
                "limit_value": bound,
                "limit_unit": bound_unit or unit,
                "share": share,
                "from": source,
            }
        )

    def cpu_pair(figure: str, rate: float, work: str, seconds_per_event: float, source: str) -> None:
        """An ingest rate beside ``work`` per event (``seconds_per_event``) on every core."""
        bound = cores / seconds_per_event
        pair(figure, rate, "events/s", f"{work} per event on {cores} cores", bound, rate / bound, source)

    recover = crypto["ecdsa_recover"] + crypto["sha256"]  # what a K1 event needs
    schnorr = crypto["schnorr_verify"] + crypto["sha256"]  # what a Nostr event needs

    core = _latest("event_core")
    if core is not None:
        admit = core["figures"]["small vote"]["fastest_seconds_per_call"]["verify from bytes (admit)"]
        pair(
            "verify a small vote from its bytes",
            admit * 1e6,
            "µs",
            "raw coincurve recovery (this run)",
            crypto["ecdsa_recover"] * 1e6,
            crypto["ecdsa_recover"] / admit,
            "event_core",
        )
    server = _latest("server")
    if server is not None:
        phases = server["figures"]["phases"]
        single, batch = phases["vote_32"]["events_per_s"], phases["batch_32"]["events_per_s"]
        if http is not None:
            pair(
                "POST /events, 32 clients",
                single,
                "events/s",
                "trivial endpoint, same server stack, 32 clients",
                http["requests_per_s_32"],
                single / http["requests_per_s_32"],
                "server",
                "requests/s",
            )
        cpu_pair("POST /events:batch, 32 clients", batch, "recover + SHA-256", recover, "server")
        pair(
            "POST /events:batch, 32 clients",
            batch,
            "events/s",
            f"2 copies in batches of {disk['syncfs_batch']}, each appended to a file with one fsync",
            disk["append_fsync_events_per_s"] / 2,
            batch / (disk["append_fsync_events_per_s"] / 2),
            "server",
        )
    store = _latest("store")
    if store is not None:
        put = store["figures"]["replicated_put_two_local"]["median_ms"] / 1e3
        pair(
            "replicated put, two local copies",
            put * 1e3,
            "ms",
            "two raw write + fsync",
            2 * disk["write_fsync_median_s"] * 1e3,
            2 * disk["write_fsync_median_s"] / put,
            "store",
        )
        hit = store["figures"]["cache_hit"]["median_us"] / 1e6
        pair(
            "cache hit (Redis GET + verify)",
            hit * 1e6,
            "µs",
            "raw Redis GET round trip",
            cache["get_median_s"] * 1e6,
            cache["get_median_s"] / hit,
            "store",
        )
    log = _latest("log")
    if log is not None:
        append = log["figures"]["append"]
        pair(
            f"log append, batches of {append['batch']:,}",
            append["log_per_s"],
            "entries/s",
            f"one write + fsync per batch of {append['batch']:,}",
            append["batch"] / disk["write_fsync_median_s"],
            append["log_per_s"] / (append["batch"] / disk["write_fsync_median_s"]),
            "log",
        )
    peer = _latest("peer")
    if peer is not None:
        top = max(peer["figures"]["clients"])
        single_peer = peer["figures"]["phases"][f"single_{top}"]
        if http is not None:
            pair(
                f"POST /events, {top} clients (peer run)",
                single_peer["events_per_s"],
                "events/s",
                "trivial endpoint, same server stack, 32 clients",
                http["requests_per_s_32"],
                single_peer["events_per_s"] / http["requests_per_s_32"],
                "peer",
                "requests/s",
            )
        phases = peer["figures"]["phases"]
        for subject, figure, work, seconds in (
            ("batch", f"POST /events:batch, {top} clients (peer run)", "recover + SHA-256", recover),
            (
                "peer_stream",
                f"nostr-relay, {top} clients with 100 EVENTs in flight",
                "Schnorr verify + SHA-256",
                schnorr,
            ),
            ("peer", f"nostr-relay, {top} clients one EVENT at a time", "Schnorr verify + SHA-256", schnorr),
        ):
            if f"{subject}_{top}" in phases:  # results from before a subject was measured lack it
                cpu_pair(figure, phases[f"{subject}_{top}"]["events_per_s"], work, seconds, "peer")
    return pairs


def run(console: Console) -> list[Record]:
    data = event(0).canonical_bytes()
    limits: dict[str, Any] = {"event_bytes": len(data), "cpus": os.cpu_count()}
    limits["crypto_s"] = _crypto(data)
    with tempfile.TemporaryDirectory(prefix="stave-bench-limits-") as temp:
        limits["disk"] = _disk(data, Path(temp))
    limits["redis"] = _redis(data)
    limits["trivial_http"] = _trivial_http()
    limits["pairs"] = _pairs(limits)
    _report(console, limits)
    write_results("limits", limits)
    return []


def _report(console: Console, limits: dict[str, Any]) -> None:
    crypto, disk, cache, http = limits["crypto_s"], limits["disk"], limits["redis"], limits["trivial_http"]
    table = Table(title=f"physical limits, this run ({limits['event_bytes']} B vote)")
    for column in ("operation", "time", "rate"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for name, label in (
        ("sha256", "SHA-256 of the event bytes"),
        ("ecdsa_verify", "coincurve ECDSA verify"),
        ("ecdsa_recover", "coincurve public-key recovery"),
        ("schnorr_verify", "coincurve BIP-340 Schnorr verify"),
    ):
        table.add_row(label, f"{crypto[name] * 1e6:.2f} µs", f"{1 / crypto[name]:,.0f}/s per core")
    table.add_row(
        "write + fsync of one file",
        f"{disk['write_fsync_median_s'] * 1e3:.2f} ms",
        f"{disk['write_fsync_per_s']:,.0f}/s",
    )
    table.add_row(
        f"{disk['syncfs_batch']} files + one syncfs",
        f"{disk['syncfs_batch_median_s'] * 1e3:.2f} ms",
        f"{disk['syncfs_files_per_s']:,.0f} files/s",
    )
    table.add_row(
        f"{disk['syncfs_batch']} events appended to one file + fdatasync",
        f"{disk['append_fsync_batch_median_s'] * 1e3:.2f} ms",
        f"{disk['append_fsync_events_per_s']:,.0f} events/s",
    )
    table.add_row("Redis SET round trip", f"{cache['set_median_s'] * 1e6:.0f} µs", f"{cache['set_per_s']:,.0f}/s")
    table.add_row("Redis GET round trip", f"{cache['get_median_s'] * 1e6:.0f} µs", f"{cache['get_per_s']:,.0f}/s")
    if http is not None:
        table.add_row(
            f"GET /log/vkey on stave serve ({http['measured_at']})",
            "-",
            f"{http['requests_per_s_1']:,.0f}/s at 1 client, {http['requests_per_s_32']:,.0f}/s at 32",
        )
    console.print(table)
    pairs = Table(title="stave figures beside the limits that bound them (share: 1.0 = at the limit)")
    for column in ("stave figure", "value", "bounded by", "limit", "share"):
        pairs.add_column(column, justify="left" if column in ("stave figure", "bounded by") else "right")
    for item in limits["pairs"]:
        pairs.add_row(
            f"{item['figure']} ({item['from']})",
            f"{item['value']:,.1f} {item['unit']}",
            item["limit"],
            f"{item['limit_value']:,.1f} {item['limit_unit']}",
            f"{item['share']:.2f}",
        )
    console.print(pairs)
