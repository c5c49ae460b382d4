"""``stave demo``: the event core end to end on the White Album bundle (what ``make run`` shows)."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from stave.config import Settings
from stave.errors import VerificationError
from stave.event import PrivateKey, admit, sign_event

__all__ = ["load_white_album_template", "run_demo"]


def load_white_album_template() -> dict[str, Any]:
    """The unsigned White Album CREATE_RELEASE_BUNDLE shipped with stave."""
    text = resources.files("stave.cli").joinpath("data/white_album.unsigned.json").read_text(encoding="utf-8")
    template: dict[str, Any] = json.loads(text)
    return template


def run_demo(settings: Settings) -> None:
    console = Console(highlight=False, soft_wrap=True)
    demo_dir = settings.data_path / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)

    console.rule("[bold]stave event core: sign, hash and verify the White Album")
    key = PrivateKey.generate()
    key_path = demo_dir / "demo.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.to_string() + "\n")
    console.print(f"1. made a secp256k1 key   {key.public_key.to_string()}")
    console.print(f"   legacy form            {key.public_key.to_legacy_string()}")
    console.print(f"   private key saved to   {key_path} (mode 0600)")

    template = load_white_album_template()
    template["author_pubkey"] = key.public_key.to_string()
    event = sign_event(template, key)
    signed = event.canonical_bytes()
    signed_path = demo_dir / "white_album.signed.json"
    signed_path.write_bytes(signed + b"\n")
    release = template["body"]["release"]
    console.print(
        f"2. signed {event.type.name} {release['release_name']!r} "
        f"({len(release['tracks'])} tracks, {len(signed):,} canonical bytes)"
    )
    console.print(f"   saved to               {signed_path}")
    console.print(f"3. event id               [bold]{event.id}[/bold]")
    console.print(f"   signature              {event.sig}")

    verified = admit(signed)
    console.print(f"4. verified               [green]ok[/green] {verified.id} (strict JSON, schema, id, signature)")

    tampered = json.loads(signed)
    track = tampered["body"]["release"]["tracks"][6]
    original_title = track["title"]
    track["title"] = original_title + " (Remix)"
    tampered_bytes = json.dumps(tampered, ensure_ascii=False).encode()  # noqa: TID251 - display copy
    try:
        admit(tampered_bytes)
    except VerificationError as exc:
        console.print(f"5. tampered copy          [red]rejected[/red] ({original_title!r} retitled): {exc}")
    else:  # pragma: no cover - would be a security bug
        raise AssertionError("a tampered event verified")
    console.print()
    console.print(f"Try: stave --data-dir {settings.data_path} event verify {Path(signed_path)}")
