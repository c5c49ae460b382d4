"""Scaling: ingest throughput and the server's memory with 1k, 10k, 100k (and 1M) events in the log.

Goal (issue 7): the server's RSS stays under 512 MiB (seed 004's container limit) throughout,
at every size, embedded (SQLite and two local store directories) and on PostgreSQL (a real
server from ``tests/servers``; it runs with ``fsync=off``, the harness's setting for tests).

At each size a fixed short round is measured on a freshly started ``stave serve`` (settings as
in ``bench/server.py``): ``ROUND_EVENTS`` new votes by 32 clients one per request
(``POST /events``), then ``ROUND_BATCH_EVENTS`` by 4 clients 100 per request
(``POST /events:batch``). The server's RSS is sampled every 0.1 s from start to stop (/proc).

Filling the log: between sizes the server is stopped and the log is grown with the library's
own ``Log.append_ids`` in batches of 10,000 (one transaction each), with synthetic ids, as
``bench/log.py`` does: the log's entries, tree nodes and state are what grows with its size,
and what an ingest touches (the sequencer appends to the tree, the duplicate check looks an id
up in the entries). The same ids go into the store as it grows with them: a row of the vote's
size in each embedded store directory's SQLite table (through the driver's own ``put_many``)
and a row per blob and copy in the store index (``StoreIndex.record_stored``), so their B-trees
are as deep as at that size. The rows are not signed events (signing 1M events would take the
whole time budget of ``make bench``), so the projection of the music graph, which reads every
body, has its cursor set past the filler (as on a replica restored from a snapshot), and
projects the measured events as usual. On PostgreSQL the store directories are filled the same
way (they are local directories there too).

``STAVE_BENCH_FULL=1`` adds the 1M size; ``STAVE_BENCH_SCALING_SIZES`` (comma-separated) sets
the sizes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import delete, insert
from tests.servers import PostgresServer

from bench.harness import Record, goal_record, print_records, upsert_summary, write_results
from bench.load import (
    SERVER_ENV,
    Events,
    Measured,
    RssSampler,
    credentials,
    feed_stave,
    rss_mib,
    signed_votes,
    stave_server,
)
from bench.log import batch_items
from stave import graph
from stave.cli.log_cmds import open_log
from stave.config import Settings, load_settings
from stave.graph import tables as graph_tables
from stave.store import BlobInfo, BlobKey, open_store
from stave.store.index import CopyRecord, StoreIndex

FULL = os.environ.get("STAVE_BENCH_FULL") == "1"
FILLER_BODY = b"x" * 365  # the store's filler rows: the size of a vote, not an event (see above)
SIZES = tuple(
    int(size)
    for size in os.environ.get(
        "STAVE_BENCH_SCALING_SIZES", "1000,10000,100000,1000000" if FULL else "1000,10000,100000"
    ).split(",")
)
BACKENDS = ("embedded", "postgres")
ROUND_EVENTS = 1_000  # POST /events by ROUND_CLIENTS clients at each size
ROUND_CLIENTS = 32
ROUND_BATCH_EVENTS = 2_000  # POST /events:batch by ROUND_BATCH_CLIENTS clients at each size
ROUND_BATCH_CLIENTS = 4
FILL_BATCH = 10_000
RSS_LIMIT_MIB = 512


def _settings(data_dir: Path, database_url: str | None) -> Settings:
    environ = {"STAVE_DATA_DIR": str(data_dir)}
    if database_url:
        environ["STAVE_DATABASE_URL"] = database_url
    return load_settings(environ=environ, cwd=data_dir)


def _fill_to(settings: Settings, target: int) -> tuple[int, int, float]:
    """Grow the log, the store and its index to ``target`` entries with synthetic ids; (size
    before, size after, seconds)."""
    log = open_log(settings)
    index = StoreIndex(log.database)
    stores = [open_store(url) for url in settings.durable_urls]  # named as the server names them
    try:
        before = size = log.size()
        started = time.perf_counter()
        while size < target:
            items = batch_items(size, min(FILL_BATCH, target - size))
            log.append_ids(items)
            keys = [BlobKey.event(item[0]) for item in items]
            for store in stores:
                failed = [r for r in store.put_many([(key, FILLER_BODY, BlobInfo()) for key in keys]) if r is not None]
                if failed:
                    raise RuntimeError(f"filling {store.name}: {failed[0]}")
            index.record_stored(
                [
                    (key, len(FILLER_BODY), BlobInfo(), [CopyRecord(store.name, "ok") for store in stores])
                    for key in keys
                ]
            )
            size += len(items)
        return before, size, time.perf_counter() - started
    finally:
        for store in stores:
            store.close()
        log.database.close()


def _skip_projection_to(settings: Settings, size: int) -> None:
    """Set the graph projection's cursor at the log's last entry (see the module docstring)."""
    database = graph.open_graph_database(settings.graph_url)
    try:
        with database.write() as connection:
            connection.execute(delete(graph_tables.cursor).where(graph_tables.cursor.c.name == graph.Projector.name))
            connection.execute(
                insert(graph_tables.cursor).values(
                    name=graph.Projector.name, seq=size - 1, log_time=0, updated_at=time.time_ns() // 1_000_000
                )
            )
    finally:
        database.close()


@contextmanager
def _database(backend: str) -> Iterator[str | None]:
    if backend == "embedded":
        yield None
        return
    with PostgresServer() as postgres:
        yield postgres.dsn


def _backend(console: Console, backend: str, votes: Events) -> list[dict[str, Any]]:
    points = []
    with tempfile.TemporaryDirectory(prefix=f"stave-bench-scaling-{backend}-") as temp, _database(backend) as url:
        data_dir = Path(temp) / "data"
        data_dir.mkdir()
        settings = _settings(data_dir, url)
        env = {"STAVE_DATABASE_URL": url} if url else {}
        for target in SIZES:
            before, size, fill_seconds = _fill_to(settings, target)
            _skip_projection_to(settings, size)
            with stave_server(data_dir, votes.items, env) as server:
                assert server.process is not None
                pid = server.process.pid
                with RssSampler(pid) as sampler:
                    clients = credentials(server.url, ROUND_CLIENTS)
                    single = feed_stave(server, clients[:ROUND_CLIENTS], votes, ROUND_EVENTS)
                    batch = feed_stave(server, clients[:ROUND_BATCH_CLIENTS], votes, ROUND_BATCH_EVENTS, batch=True)
                    rss_end = rss_mib(pid)
            point = {
                "backend": backend,
                "log_size": size,
                "filled": size - before,
                "fill_seconds": fill_seconds,
                "single": _figures(single),
                "batch": _figures(batch),
                "rss_peak_mib": sampler.peak,
                "rss_end_mib": rss_end,
                "rss_samples": len(sampler.samples),
            }
            points.append(point)
            console.print(
                f"  {backend} at {size:>9,} events: single {single.events_per_s:,.0f}/s, batch "
                f"{batch.events_per_s:,.0f}/s, RSS peak {sampler.peak:.0f} MiB (filled {size - before:,} in "
                f"{fill_seconds:.1f} s)"
            )
    return points


def _figures(measured: Measured) -> dict[str, Any]:
    figures = measured.figures()
    figures.pop("events_per_commit", None)
    return figures


def run(console: Console) -> list[Record]:
    per_size = ROUND_EVENTS + -(-ROUND_BATCH_EVENTS // 100 // ROUND_BATCH_CLIENTS) * ROUND_BATCH_CLIENTS * 100 + 32
    started = time.perf_counter()
    signed = signed_votes(0, per_size * len(SIZES) * len(BACKENDS))
    console.print(f"signed {len(signed):,} events in {time.perf_counter() - started:.1f} s")
    points: list[dict[str, Any]] = []
    for number, backend in enumerate(BACKENDS):
        share = len(signed) // len(BACKENDS)
        points += _backend(console, backend, Events(signed[number * share : (number + 1) * share]))
    figures = {
        "sizes": list(SIZES),
        "backends": list(BACKENDS),
        "round": {
            "single_events": ROUND_EVENTS,
            "single_clients": ROUND_CLIENTS,
            "batch_events": ROUND_BATCH_EVENTS,
            "batch_clients": ROUND_BATCH_CLIENTS,
        },
        "fill_batch": FILL_BATCH,
        "server_env": SERVER_ENV,
        "points": points,
    }
    return _report(console, figures)


def _report(console: Console, figures: dict[str, Any]) -> list[Record]:
    table = Table(title="ingest and server memory against the log's size")
    for column in ("backend", "events in log", "single ev/s", "p99 ms", "batch ev/s", "RSS peak MiB", "RSS end MiB"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for point in figures["points"]:
        table.add_row(
            point["backend"],
            f"{point['log_size']:,}",
            f"{point['single']['events_per_s']:,.0f}",
            f"{point['single']['p99_ms']:.0f}",
            f"{point['batch']['events_per_s']:,.0f}",
            f"{point['rss_peak_mib']:.0f}",
            f"{point['rss_end_mib']:.0f}",
        )
    console.print(table)
    round_ = figures["round"]
    console.print(
        f"each size: {round_['single_events']:,} votes by {round_['single_clients']} clients one per request, then "
        f"{round_['batch_events']:,} by {round_['batch_clients']} clients 100 per request, on a freshly started "
        "server; the log filled between sizes with Log.append_ids (synthetic ids, see bench/scaling.py)"
    )
    peak = max(point["rss_peak_mib"] for point in figures["points"])
    records = [goal_record("scaling.max_rss_mib", peak, "MiB", f"<={RSS_LIMIT_MIB}")]
    figures["records"] = [record.name for record in records]
    print_records(f"scaling goals (sizes to {max(figures['sizes']):,})", records, console)
    upsert_summary(records)
    write_results("scaling", figures)
    return records
