"""``stave credential``: issue relay and admin credentials with this server's issuer key."""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from stave.auth import Issuer, Kind
from stave.config import Settings
from stave.server.access import load_secret

credential_app = typer.Typer(help="Issue credentials with this server's issuer key.", no_args_is_help=True)


def load_holder_key(path: Path) -> bytes:
    """An Ed25519 seed (base64url on one line, mode 0600), made on first use."""
    if path.exists():
        return base64.urlsafe_b64decode(path.read_text().strip() + "==")
    seed = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(seed).decode().rstrip("=") + "\n")
    return seed


@credential_app.command("issue")
def issue(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="relay (days) or admin (months).")],
    key_file: Annotated[Path, typer.Option("--key-file", help="The holder's Ed25519 key (made if missing).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the token here (mode 0600) instead of printing it.")
    ] = None,
) -> None:
    """Issue a relay or admin credential bound to the holder's key."""
    if kind not in (Kind.RELAY.value, Kind.ADMIN.value):
        raise typer.BadParameter("--kind must be relay or admin (app credentials come from proof of work)")
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    issuer = Issuer(load_secret(settings.data_path / "auth" / "issuer.key"))
    holder = Ed25519PrivateKey.from_private_bytes(load_holder_key(key_file))
    public = holder.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    credential = issuer.issue(Kind(kind), public, time.time())
    if out is None:
        typer.echo(credential.token)
        return
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(credential.token + "\n")
    until = time.strftime("%Y-%m-%d", time.gmtime(credential.expires_at))
    typer.echo(f"wrote a {kind} credential valid until {until} to {out}", err=True)
