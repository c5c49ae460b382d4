"""``stave submit``, ``stave get`` and ``stave tail``: the CLI of a stave server (``--server URL``)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from stave.cli.inputs import admit_inputs
from stave.cli.store_cmds import progress_bar
from stave.client import StaveClient
from stave.client.http import ServerError, chunks
from stave.config import Settings
from stave.errors import VerificationError

ServerOpt = Annotated[str, typer.Option("--server", envvar="STAVE_SERVER", help="The server's URL (env STAVE_SERVER).")]
DEFAULT_SERVER = "http://127.0.0.1:8080"


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def submit(
    ctx: typer.Context,
    files: Annotated[list[str], typer.Argument(help="Files or '-'.")],
    server: ServerOpt = DEFAULT_SERVER,
    batch: Annotated[int, typer.Option("--batch", help="Events per request.")] = 256,
) -> None:
    """Submit signed events to a server: '<seq> <id>' each, '(duplicate)' for a repeat. Exit 1 on any failure."""
    policy = _settings(ctx).event.policy()
    events, failed = admit_inputs(files, policy, errors_to_stderr=True)
    with StaveClient(server) as client, progress_bar() as progress:
        task = progress.add_task("submitting", total=len(events))
        for group in chunks(events, batch):
            try:
                results = client.submit_batch(group) if len(group) > 1 else [client.submit(group[0])]
            except ServerError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(1) from None
            for result in results:
                if result.seq is None:
                    failed = True
                    typer.echo(f"error {result.id}: {result.error}", err=True)
                else:
                    typer.echo(f"{result.seq} {result.id}{' (duplicate)' if result.duplicate else ''}")
            progress.advance(task, len(group))
    if failed:
        raise typer.Exit(1)


def get(
    event_ids: Annotated[list[str], typer.Argument(help="Event ids.")],
    server: ServerOpt = DEFAULT_SERVER,
) -> None:
    """Print events from a server (JSON Lines), each verified on this side too."""
    failed = False
    with StaveClient(server) as client:
        for event_id in event_ids:
            try:
                event = client.get(event_id)
            except (ServerError, VerificationError) as exc:
                failed = True
                typer.echo(f"error: {event_id}: {exc}", err=True)
            else:
                sys.stdout.buffer.write(event.canonical_bytes() + b"\n")
    if failed:
        raise typer.Exit(1)


def tail(
    server: ServerOpt = DEFAULT_SERVER,
    after: Annotated[int, typer.Option("--after", help="Start after this sequence number.")] = -1,
    follow_for: Annotated[
        float | None, typer.Option("--for", help="Stop after this many seconds (default: follow forever).")
    ] = None,
) -> None:
    """Follow the log: one JSON line per entry (seq, id, type, author, created_at)."""
    with StaveClient(server) as client:
        for entry in client.tail(after_seq=after, stop_after=follow_for):
            typer.echo(json.dumps(entry))  # noqa: TID251 - a line for people and scripts
