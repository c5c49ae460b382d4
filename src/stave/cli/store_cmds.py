"""``stave store``: put, get, health, scrub and archive on the replicated store."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from stave.cli.inputs import admit_inputs
from stave.config import Settings
from stave.db import open_database
from stave.errors import StorageError
from stave.store import Namespace, QuorumError, ReplicatedStore

store_app = typer.Typer(help="The replicated event store: put, get, health, scrub, archive.", no_args_is_help=True)

StoreOpt = Annotated[
    list[str] | None,
    typer.Option("--store", help="A durable backend URL (repeat for several); replaces the configured ones."),
]
CacheOpt = Annotated[str | None, typer.Option("--cache", help="A cache URL, e.g. redis://127.0.0.1:6379/0.")]
RedundancyOpt = Annotated[int | None, typer.Option("--min-redundancy", help="Durable copies needed to acknowledge.")]


@store_app.callback()
def store_root(
    ctx: typer.Context, store: StoreOpt = None, cache: CacheOpt = None, min_redundancy: RedundancyOpt = None
) -> None:
    """Backends come from the configuration; --store, --cache and --min-redundancy override it."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    if store:
        settings.store.durable = list(store)
    if cache is not None:
        settings.store.cache = cache
    if min_redundancy is not None:
        settings.store.min_redundancy = min_redundancy


def open_replicated(settings: Settings) -> ReplicatedStore:
    """The replicated store the settings describe (used by every command that stores events)."""
    durable = settings.durable_urls
    if settings.store.min_redundancy > len(durable):
        raise typer.BadParameter(
            f"--min-redundancy {settings.store.min_redundancy} needs at least that many durable backends; "
            f"{len(durable)} configured"
        )
    return ReplicatedStore.from_urls(
        durable,
        open_database(settings.database_url),
        cache=settings.store.cache,
        archive=settings.archive_url,
        min_redundancy=settings.store.min_redundancy,
        timeout=settings.store.timeout,
        temp_dir=settings.data_path,
    )


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


@store_app.command("put")
def store_put(ctx: typer.Context, files: Annotated[list[str], typer.Argument(help="Files or '-'.")]) -> None:
    """Verify and store signed events: 'stored <id> <backends>', 'duplicate <id>', or why not. Exit 1 on any failure."""
    settings = _settings(ctx)
    policy = settings.event.policy()
    store = open_replicated(settings)
    try:
        events, failed = admit_inputs(files, policy, errors_to_stderr=False)
        for event, result in zip(events, store.put_events(events), strict=True):
            if isinstance(result, QuorumError):
                failed = True
                typer.echo(f"failed {event.id}: {result}")
            elif result.duplicate:
                typer.echo(f"duplicate {event.id}")
            else:
                note = f" (failed: {', '.join(sorted(result.failed))})" if result.failed else ""
                typer.echo(f"stored {event.id} {','.join(result.stored)}{note}")
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


@store_app.command("get")
def store_get(ctx: typer.Context, ids: Annotated[list[str], typer.Argument(help="Event ids.")]) -> None:
    """Print each verified signed event (JSON Lines); exit 1 if any cannot be served verified."""
    store = open_replicated(_settings(ctx))
    failed = False
    try:
        for event_id in ids:
            try:
                data = store.get_event(event_id)
            except (StorageError, ValueError) as exc:
                failed = True
                typer.echo(f"error: {event_id}: {exc}", err=True)
            else:
                sys.stdout.buffer.write(data + b"\n")
        sys.stdout.buffer.flush()
    finally:
        store.close()
    if failed:
        raise typer.Exit(1)


@store_app.command("health")
def store_health(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Health of every backend with its latency; exit 1 when writes cannot reach quorum."""
    store = open_replicated(_settings(ctx))
    try:
        health = store.health()
    finally:
        store.close()
    if as_json:
        typer.echo(
            json.dumps(  # noqa: TID251 - a report for people and scripts, not canonical bytes
                {
                    "ok": health.ok,
                    "durable_up": health.durable_up,
                    "min_redundancy": health.min_redundancy,
                    "backends": [
                        {
                            "name": b.backend,
                            "durable": b.durable,
                            "ok": b.ok,
                            "latency_ms": round(b.latency_ms, 3),
                            "detail": b.detail,
                        }
                        for b in health.backends
                    ],
                }
            )
        )
    else:
        verdict = "ok" if health.ok else "NOT OK"
        table = Table(title=f"store health: {verdict} ({health.durable_up} durable up, {health.min_redundancy} needed)")
        for column in ("backend", "kind", "ok", "latency", "detail"):
            table.add_column(column)
        for report in health.backends:
            table.add_row(
                report.backend,
                "durable" if report.durable else "cache",
                "[green]yes[/green]" if report.ok else "[red]no[/red]",
                f"{report.latency_ms:.1f} ms",
                report.detail,
            )
        _console().print(table)
    if not health.ok:
        raise typer.Exit(1)


def _console() -> Console:
    """A console that does not squeeze tables to 80 columns when output is not a terminal."""
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def progress_bar() -> Progress:
    # On stderr: standard output carries the results, one line each, for scripts.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
    )


@store_app.command("scrub")
def store_scrub(
    ctx: typer.Context,
    media: Annotated[bool, typer.Option("--media", help="Scrub media blobs instead of events.")] = False,
) -> None:
    """Verify every copy on every backend, repair from good copies, and report per backend."""
    store = open_replicated(_settings(ctx))
    namespace = Namespace.MEDIA if media else Namespace.EVENTS
    try:
        with progress_bar() as progress:
            task = progress.add_task(f"scrubbing {namespace.value}", total=None)
            report = store.scrub(
                namespace, progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
    finally:
        store.close()
    verdict = "clean" if report.clean else "repaired" if report.healed else "PROBLEMS"
    table = Table(title=f"scrub of {report.checked} {namespace.value}: {verdict}")
    fields = ("ok", "missing", "corrupt", "unavailable", "repaired", "orphaned", "temporaries")
    for column in ("backend", *fields):
        table.add_column(column, justify="right" if column != "backend" else "left")
    for name, counts in report.backends.items():
        table.add_row(name, *(str(getattr(counts, field)) for field in fields))
    _console().print(table)
    if report.unrecoverable:
        typer.echo(f"unrecoverable ({len(report.unrecoverable)}): {' '.join(report.unrecoverable[:20])}", err=True)
        raise typer.Exit(1)


def parse_cutoff(text: str) -> int:
    """A date (YYYY-MM-DD, UTC midnight), an ISO datetime, or Unix seconds."""
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not YYYY-MM-DD, an ISO datetime or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@store_app.command("archive")
def store_archive(
    ctx: typer.Context,
    before: Annotated[
        str, typer.Option("--before", help="Archive events created before this (YYYY-MM-DD, ISO, or Unix seconds).")
    ],
) -> None:
    """Pack events older than a cut-off into a CAR file in the cold archive; they stay readable."""
    cutoff = parse_cutoff(before)
    store = open_replicated(_settings(ctx))
    try:
        with progress_bar() as progress:
            task = progress.add_task("archiving", total=None)
            count, locator = store.archive_events(
                cutoff, progress=lambda done, total: progress.update(task, completed=done, total=total)
            )
    finally:
        store.close()
    if count:
        when = datetime.fromtimestamp(cutoff, UTC).isoformat()
        typer.echo(f"archived {count} events created before {when} into {locator.split('#')[0] if locator else '?'}")
    else:
        typer.echo("nothing to archive")
