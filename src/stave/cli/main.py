"""``stave``: the command line. Parses arguments, calls the library, maps errors in one place.

Exit status: 0 success; 1 some input failed verification or validation; 2 bad usage,
configuration or unreadable input.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from stave import __version__
from stave.cli import client_cmds, log_cmds
from stave.cli.auth_cmds import credential_app
from stave.cli.graph_cmds import project_app, query_app
from stave.cli.inputs import Input, read_inputs, read_key_file
from stave.cli.log_cmds import log_app
from stave.cli.store_cmds import store_app
from stave.config import Settings, load_settings
from stave.errors import ConfigError, StaveError, VerificationError
from stave.event import (
    AdmissionPolicy,
    PrivateKey,
    admit,
    canonicalize,
    check_event,
    parse,
    sign_event,
    unsigned_canonical,
)

app = typer.Typer(
    name="stave",
    help="stave: a verifiable event store for music metadata.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
key_app = typer.Typer(help="Make and inspect EOS/Antelope K1 keys.", no_args_is_help=True)
json_app = typer.Typer(help="Strict JSON and RFC 8785 canonical form.", no_args_is_help=True)
event_app = typer.Typer(help="Hash, sign, verify and validate events.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(json_app, name="json")
app.add_typer(event_app, name="event")
app.add_typer(store_app, name="store")
app.add_typer(log_app, name="log")
app.add_typer(credential_app, name="credential")
app.add_typer(project_app, name="project")
app.add_typer(query_app, name="query")
app.command("proof")(log_cmds.proof)
app.command("verify-bundle")(log_cmds.verify_bundle_command)
app.command("anchor")(log_cmds.anchor)
app.command("submit")(client_cmds.submit)
app.command("get")(client_cmds.get)
app.command("tail")(client_cmds.tail)

FilesArg = Annotated[list[str], typer.Argument(help="Files to read; '-' reads standard input.", show_default=False)]
KeyFileOpt = Annotated[Path, typer.Option("--key-file", help="File holding one private key (PVT_K1_… or WIF).")]


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def _policy(ctx: typer.Context) -> AdmissionPolicy:
    return _settings(ctx).event.policy()


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _write_line(data: bytes) -> None:
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.buffer.flush()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stave {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Where stave keeps its state (env STAVE_DATA_DIR; default: the user data directory)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML config file (env STAVE_CONFIG; default: ./stave.toml if present)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """stave: a verifiable event store for music metadata."""
    try:
        ctx.obj = load_settings(config, overrides={"data_dir": str(data_dir) if data_dir else None})
    except ConfigError as exc:
        _fail(str(exc))


# --- key ----------------------------------------------------------------------------------


@key_app.command("new")
def key_new(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the private key here (mode 0600) instead of printing it.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --out file.")] = False,
) -> None:
    """Make a new key: print the private key (or write it to --out), then the public key."""
    key = PrivateKey.generate()
    if out is None:
        typer.echo(key.to_string())
    else:
        _write_private(out, key, force)
        typer.echo(f"wrote private key to {out}", err=True)
    typer.echo(key.public_key.to_string())


def _write_private(path: Path, key: PrivateKey, force: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        _fail(f"{path} exists; pass --force to overwrite it")
    except OSError as exc:
        _fail(f"{path}: cannot write: {exc.strerror}")
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)  # O_TRUNC keeps an old file's mode
        handle.write(key.to_string() + "\n")


@key_app.command("pub")
def key_pub(
    key_file: KeyFileOpt,
    legacy: Annotated[bool, typer.Option("--legacy", help="Print the legacy EOS… form.")] = False,
) -> None:
    """Print the public key of a private key file."""
    key = read_key_file(key_file)
    typer.echo(key.public_key.to_legacy_string() if legacy else key.public_key.to_string())


# --- json ---------------------------------------------------------------------------------


@json_app.command("canonical")
def json_canonical(ctx: typer.Context, file: Annotated[str, typer.Argument(help="File or '-'.")]) -> None:
    """Print one JSON text, strictly parsed, in RFC 8785 canonical form."""
    data = sys.stdin.buffer.read() if file == "-" else _read_file(file)
    parsed = parse(data, _policy(ctx).limits)
    _write_line(canonicalize(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical))


def _read_file(name: str) -> bytes:
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        _fail(f"{name}: cannot read: {exc.strerror}")


# --- event --------------------------------------------------------------------------------


def _unsigned_bytes(item: Input, ctx: typer.Context) -> bytes:
    parsed = parse(item.data, _policy(ctx).limits)
    if not isinstance(parsed.value, dict):
        raise VerificationError(f"{item.label}: $: an event must be a JSON object")
    return unsigned_canonical(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical)


@event_app.command("canonical")
def event_canonical(ctx: typer.Context, files: FilesArg) -> None:
    """Print the canonical bytes of each event without its sig, one line per event."""
    for item in read_inputs(files, _policy(ctx).limits):
        _write_line(_unsigned_bytes(item, ctx))


@event_app.command("hash")
def event_hash(ctx: typer.Context, files: FilesArg) -> None:
    """Print the id of each event (SHA-256 of its canonical form without sig)."""
    for item in read_inputs(files, _policy(ctx).limits):
        typer.echo(hashlib.sha256(_unsigned_bytes(item, ctx)).hexdigest())


@event_app.command("sign")
def event_sign(
    ctx: typer.Context, key_file: KeyFileOpt, file: Annotated[str, typer.Argument(help="File or '-'.")]
) -> None:
    """Sign an event template and print the signed event (canonical JSON)."""
    key = read_key_file(key_file)
    policy = _policy(ctx)
    inputs = read_inputs([file], policy.limits)
    if len(inputs) != 1:
        _fail(f"{file}: holds {len(inputs)} events; event sign signs one")
    parsed = parse(inputs[0].data, policy.limits)
    if not isinstance(parsed.value, dict):
        raise VerificationError(f"{inputs[0].label}: $: an event must be a JSON object")
    _write_line(sign_event(parsed.value, key).canonical_bytes())


@event_app.command("verify")
def event_verify(ctx: typer.Context, files: FilesArg) -> None:
    """Verify each event: 'ok <id>' or 'invalid <id-or-position>: <reason>'. Exit 1 if any is invalid."""
    policy = _policy(ctx)
    failed = False
    for item in read_inputs(files, policy.limits):
        try:
            event = admit(item.data, policy)
        except VerificationError as exc:
            failed = True
            typer.echo(f"invalid {_label(item, policy)}: {exc}")
        else:
            typer.echo(f"ok {event.id}")
    if failed:
        raise typer.Exit(1)


def _label(item: Input, policy: AdmissionPolicy) -> str:
    """The event's id when it can be computed, else its position."""
    try:
        parsed = parse(item.data, policy.limits)
    except VerificationError:
        return item.label
    if not isinstance(parsed.value, dict):
        return item.label
    return hashlib.sha256(unsigned_canonical(parsed.value, sorted_is_canonical=parsed.sorted_is_canonical)).hexdigest()


@event_app.command("validate")
def event_validate(ctx: typer.Context, files: FilesArg) -> None:
    """Check each event against its type's schema (signed or not); errors name the JSON path."""
    policy = _policy(ctx)
    failed = False
    for item in read_inputs(files, policy.limits):
        try:
            check_event(item.data, policy)
        except VerificationError as exc:
            failed = True
            typer.echo(f"invalid {item.label}: {exc}")
        else:
            typer.echo(f"ok {item.label}")
    if failed:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default 8080).")] = None,
) -> None:
    """Run the stave server: ingest, reads, the log as tlog-tiles, checkpoints and anchoring."""
    import uvicorn

    from stave.server.app import create_app
    from stave.server.logs import configure_logging

    settings = _settings(ctx)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    configure_logging()
    uvicorn.run(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("relay")
def relay(
    ctx: typer.Context,
    upstream: Annotated[list[str], typer.Option("--upstream", help="A server URL (repeat for several).")],
    credential_file: Annotated[
        Path, typer.Option("--credential-file", help="The relay credential (from `stave credential issue`).")
    ],
    key_file: Annotated[Path, typer.Option("--key-file", help="The Ed25519 key the credential is bound to.")],
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8081,
) -> None:
    """Run a relay: proof of work and rate limits for apps, forwarding writes with its own credential."""
    import uvicorn

    from stave.cli.auth_cmds import load_holder_key
    from stave.relay.app import RelayConfig, create_relay
    from stave.server.logs import configure_logging

    try:
        token = credential_file.read_text(encoding="ascii").strip()
    except OSError as exc:
        _fail(f"{credential_file}: cannot read: {exc.strerror}")
    config = RelayConfig(upstreams=upstream, credential=token, key=load_holder_key(key_file))
    configure_logging()
    uvicorn.run(create_relay(_settings(ctx), config), host=host, port=port, log_config=None, access_log=False)


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Sign, hash and verify the White Album bundle end to end, then show a tampered copy fail."""
    from stave.cli.demo import run_demo

    run_demo(_settings(ctx))


def main() -> None:
    """Entry point: map stave's errors to messages and exit codes in one place."""
    try:
        app(prog_name="stave")
    except VerificationError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    except StaveError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except BrokenPipeError:  # e.g. `stave event hash … | head -1`
        sys.stderr.close()
        sys.exit(0)
