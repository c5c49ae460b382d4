"""Redis: Debian's redis-server on a free port, no persistence unless asked for."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import BinaryIO

from ._process import HOST, Server, ServerNotInstalled, free_ports

RespValue = bytes | int | str | list["RespValue"] | None


class RedisError(Exception):
    """An error reply (-ERR ...) from Redis."""


class RedisServer(Server):
    """`redis-server --port P --bind 127.0.0.1 --dir DATA`.

    Attributes: host, port, url (redis://127.0.0.1:P/0), data_dir.
    With persistent=True the append-only file is on (fsync every write), so data survives
    stop()/start() and kill()/start(); by default nothing is written to disk at all.
    """

    name = "redis"
    start_timeout = 10.0

    def __init__(self, *, persistent: bool = False, extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.persistent = persistent
        self.extra_args = extra_args
        self.host = HOST
        self.port = 0
        super().__init__(base_dir=base_dir)

    @classmethod
    def binary(cls) -> str:
        path = shutil.which("redis-server")
        if path is None:
            raise ServerNotInstalled(cls.name, "redis-server is not on PATH")
        return path

    @classmethod
    def check_installed(cls) -> None:
        cls.binary()

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _allocate_ports(self) -> None:
        (self.port,) = free_ports(1)

    def all_ports(self) -> list[int]:
        return [self.port]

    def _command(self) -> list[str]:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        return [
            self.binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--save", "",  # no RDB snapshots
            *persistence,
            "--daemonize", "no",
            "--logfile", "",  # stdout, which is our log file
            *self.extra_args,
        ]  # fmt: skip

    def _ready(self) -> bool:
        return self.command("PING", timeout=2) == "PONG"

    def command(self, *args: str | bytes | int, timeout: float = 5.0) -> RespValue:
        """Send one command on a fresh connection and return the decoded reply.

        A dependency-free client for readiness and smoke tests; real code uses redis-py.
        """
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(_encode(args))
            with sock.makefile("rb") as replies:
                return _read_reply(replies)


def _encode(args: tuple[str | bytes | int, ...]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(f: BinaryIO) -> RespValue:
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by redis")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        n = int(body)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(body)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected RESP reply {line!r}")
