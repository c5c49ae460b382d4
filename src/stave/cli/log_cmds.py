"""``stave log``, ``stave proof``, ``stave verify-bundle`` and ``stave anchor``."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from stave.anchor import open_ledger
from stave.cli.inputs import admit_inputs
from stave.cli.store_cmds import open_replicated, progress_bar
from stave.config import Settings
from stave.db import open_database
from stave.errors import ProofError, StaveError, VerificationError
from stave.log import merkle
from stave.log.anchoring import Anchoring
from stave.log.bundle import encode_hashes, verify_bundle
from stave.log.sequencer import Log
from stave.log.service import LogService, load_or_create_signer

log_app = typer.Typer(help="The verifiable log: add, checkpoints, proofs, verify.", no_args_is_help=True)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def open_log(settings: Settings) -> Log:
    signer = load_or_create_signer(settings.log_key_path, settings.log.origin)
    return Log(open_database(settings.database_url), signer)


def open_service(settings: Settings) -> LogService:
    log = open_log(settings)
    ledgers = [open_ledger(url) for url in settings.ledger_urls]
    return LogService(log, open_replicated(settings), Anchoring(log, ledgers))


def _json(value: object) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")


@log_app.command("add")
def log_add(ctx: typer.Context, files: Annotated[list[str], typer.Argument(help="Files or '-'.")]) -> None:
    """Verify, store and sequence signed events: '<seq> <id>' each (the original seq for a repeat).

    Publishes a checkpoint covering them before it exits, so proofs are available at once.
    """
    settings = _settings(ctx)
    policy = settings.event.policy()
    service = open_service(settings)
    try:
        events, failed = admit_inputs(files, policy, errors_to_stderr=True)
        for added in service.add(events):
            if added.seq is None:
                failed = True
                typer.echo(f"error {added.event_id}: {added.error}", err=True)
            else:
                typer.echo(f"{added.seq} {added.event_id}")
    finally:
        service.close()
    if failed:
        raise typer.Exit(1)


@log_app.command("checkpoint")
def log_checkpoint(ctx: typer.Context) -> None:
    """Print the latest signed checkpoint (C2SP signed note), publishing one if the tree has grown."""
    log = open_log(_settings(ctx))
    sys.stdout.write(log.publish_checkpoint().note)


@log_app.command("vkey")
def log_vkey(ctx: typer.Context) -> None:
    """Print the log's note verifier key (<name>+<hash>+<base64 key>)."""
    typer.echo(open_log(_settings(ctx)).vkey())


@log_app.command("prove")
def log_prove(
    ctx: typer.Context,
    inclusion: Annotated[str | None, typer.Option("--inclusion", help="Event id to prove.")] = None,
    size: Annotated[int | None, typer.Option("--size", help="Tree size (default: the latest checkpoint's).")] = None,
    consistency: Annotated[
        tuple[int, int] | None, typer.Option("--consistency", help="Old and new tree sizes.", show_default=False)
    ] = None,
) -> None:
    """An inclusion proof for an event, or a consistency proof between two sizes, as JSON."""
    log = open_log(_settings(ctx))
    if (inclusion is None) == (consistency is None):
        raise typer.BadParameter("give exactly one of --inclusion ID and --consistency A B")
    if inclusion is not None:
        seq = log.lookup(inclusion)
        if seq is None:
            raise ProofError(f"event {inclusion} is not in the log")
        if size is None:
            latest = log.latest_checkpoint()
            size = latest.size if latest is not None else log.size()
        _json(
            {
                "log_index": seq,
                "tree_size": size,
                "root_hash": base64.b64encode(log.root_at(size)).decode(),
                "hashes": encode_hashes(log.inclusion_proof(seq, size)),
            }
        )
        return
    assert consistency is not None
    old, new = consistency
    _json(
        {
            "old_size": old,
            "new_size": new,
            "old_root": base64.b64encode(log.root_at(old) if old else merkle.EMPTY_ROOT).decode(),
            "new_root": base64.b64encode(log.root_at(new)).decode(),
            "hashes": encode_hashes(log.consistency_proof(old, new)),
        }
    )


@log_app.command("verify")
def log_verify(ctx: typer.Context) -> None:
    """Recompute the whole tree from the stored ids; compare every node and every checkpoint."""
    log = open_log(_settings(ctx))
    with progress_bar() as progress:
        task = progress.add_task("verifying the log", total=None)
        report = log.verify(progress=lambda done, total: progress.update(task, completed=done, total=total))
    if report.ok:
        typer.echo(
            f"ok: {report.size} entries; every stored node, the root and {len(log.checkpoints())} checkpoints verify"
        )
        return
    if not report.root_matches_state:
        typer.echo("problem: the stored root differs from the tree recomputed from the stored ids")
    for level, index in report.bad_nodes[:50]:
        typer.echo(f"problem: stored node (level {level}, index {index}) has a wrong hash")
    for level, index in report.missing_nodes[:50]:
        typer.echo(f"problem: stored node (level {level}, index {index}) is missing")
    for size, problem in report.bad_checkpoints:
        typer.echo(f"problem: checkpoint of size {size}: {problem}")
    raise typer.Exit(1)


def proof(ctx: typer.Context, event_id: Annotated[str, typer.Argument(help="The event's id.")]) -> None:
    """Print the proof bundle of an event: event, inclusion proof, checkpoint, anchor receipts."""
    service = open_service(_settings(ctx))
    try:
        _json(service.bundle(event_id))
    finally:
        service.close()


def verify_bundle_command(
    ctx: typer.Context,
    bundle_file: Annotated[Path, typer.Argument(help="A bundle from `stave proof`.")],
    vkey: Annotated[
        str | None, typer.Option("--vkey", help="The log's verifier key (default: this data dir's log).")
    ] = None,
    ledger: Annotated[str | None, typer.Option("--ledger", help="Also check anchors on this ledger URL.")] = None,
) -> None:
    """Verify a proof bundle offline, step by step; fail closed at the first step that fails."""
    try:
        bundle = json.loads(bundle_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{bundle_file}: not a readable JSON bundle: {exc}") from None
    key = vkey or open_log(_settings(ctx)).vkey()
    check = None
    if ledger is not None:
        opened = open_ledger(ledger)
        check = opened.verify
    try:
        steps = verify_bundle(bundle, key, check_anchor=check)
    except ProofError as exc:
        typer.echo(f"FAILED {exc}")
        raise typer.Exit(1) from None
    for step in steps:
        typer.echo(f"({step.number}) ok {step.name}: {step.detail}")
    anchored = any(step.name.endswith("receipt") for step in steps)
    verdict = "anchored" if anchored else "not yet anchored (no receipt in the bundle)"
    typer.echo(f"verified: in the log, {verdict}{'' if ledger else '; ledger not checked (use --ledger)'}")


def anchor(ctx: typer.Context) -> None:
    """Run one anchoring round by hand: anchor the latest checkpoint, refresh pending receipts."""
    settings = _settings(ctx)
    log = open_log(settings)
    if log.latest_checkpoint() is None or log.latest_checkpoint().size < log.size():  # type: ignore[union-attr]
        log.publish_checkpoint()
    ledgers = []
    for url in settings.ledger_urls:
        try:
            ledgers.append(open_ledger(url))
        except StaveError as exc:
            typer.echo(f"error {url}: {exc}", err=True)
    outcomes = Anchoring(log, ledgers).run_once()
    for ledger in ledgers:
        typer.echo(ledger.describe())
    failed = False
    for outcome in outcomes:
        failed |= outcome.state == "error"
        typer.echo(
            f"{outcome.state} {outcome.ledger} size {outcome.size}{': ' + outcome.detail if outcome.detail else ''}"
        )
    if failed:
        raise typer.Exit(1)
