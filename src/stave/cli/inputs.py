"""Reading events and keys from files or standard input, with errors that name the source."""

from __future__ import annotations

import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import typer

from stave.errors import ConfigError, JSONError, KeyFormatError, VerificationError
from stave.event import AdmissionPolicy, Event, JsonLimits, PrivateKey, admit, parse

__all__ = ["Input", "admit_inputs", "read_inputs", "read_key_file"]


@dataclass(frozen=True, slots=True)
class Input:
    """One JSON text and where it came from (``file`` or ``file:line``)."""

    label: str
    data: bytes


def _read_source(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror}") from None


def read_inputs(names: list[str], limits: JsonLimits) -> list[Input]:
    """A file holding one JSON value is one input; otherwise each non-empty line is one (JSON Lines).

    A file that is neither (say, one pretty-printed event with a syntax error) is one input,
    so its error is reported once, against the whole file.
    """
    inputs: list[Input] = []
    for name in names:
        data = _read_source(name)
        label = "<stdin>" if name == "-" else name
        lines = [(number, line) for number, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        if len(lines) > 1 and _is_single_value(data, limits) is False and _parses(lines[0][1], limits):
            inputs.extend(Input(f"{label}:{number}", line) for number, line in lines)
        else:
            inputs.append(Input(label, data))
    return inputs


def _is_single_value(data: bytes, limits: JsonLimits) -> bool:
    try:
        parse(data, JsonLimits(max_bytes=max(len(data), 2), max_depth=limits.max_depth))
    except JSONError:
        return False
    return True


def _parses(line: bytes, limits: JsonLimits) -> bool:
    try:
        parse(line, limits)
    except JSONError:
        return False
    return True


def admit_inputs(names: list[str], policy: AdmissionPolicy, *, errors_to_stderr: bool) -> tuple[list[Event], bool]:
    """Read and admit every event (clock-skew checked); report each refused one. Returns (events, any refused)."""
    events: list[Event] = []
    refused = False
    for item in read_inputs(names, policy.limits):
        try:
            events.append(admit(item.data, policy, now=int(time.time())))
        except VerificationError as exc:
            refused = True
            typer.echo(f"invalid {item.label}: {exc}", err=errors_to_stderr)
    return events, refused


def read_key_file(path: Path) -> PrivateKey:
    """Read one private key (``PVT_K1_…`` or WIF) on one line; warn if others can read it."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"key file {path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KeyFormatError(f"key file {path}: not UTF-8 text") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and os.name == "posix":
        print(f"warning: key file {path} is readable by others; run: chmod 600 {path}", file=sys.stderr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise KeyFormatError(f"key file {path}: expected exactly one key on one line, found {len(lines)} lines")
    try:
        return PrivateKey.from_string(lines[0])
    except KeyFormatError as exc:
        raise KeyFormatError(f"key file {path}: {exc}") from None
