"""PostgreSQL: a throwaway cluster made by initdb, the postmaster run in the foreground."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from ._process import HOST, Server, ServerError, ServerNotInstalled, free_ports, run

SUPERUSER = "postgres"


class PostgresServer(Server):
    """`postgres -D DATA -p P -c listen_addresses=127.0.0.1 -k SOCKDIR -c fsync=off`.

    Attributes: host, port, user, database, dsn (postgresql://postgres@127.0.0.1:P/postgres),
    socket_dir, data_dir, bin_dir. Trust authentication: no password.

    The postmaster runs in the foreground as our child rather than under `pg_ctl start`,
    which puts it in a session of its own that our process-group teardown could not reach.
    Stopping sends SIGINT, a "fast" shutdown (SIGTERM would wait for clients to disconnect).
    initdb and postgres refuse to run as root, so as root they run as the `postgres` user
    that Debian's package creates, and the temporary directory is handed to that user.
    """

    name = "postgres"
    start_timeout = 30.0
    stop_signal = signal.SIGINT

    def __init__(self, *, extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.extra_args = extra_args
        self.host = HOST
        self.port = 0
        self.user = SUPERUSER
        self.database = "postgres"
        self.bin_dir = self.find_bin_dir()
        super().__init__(base_dir=base_dir)
        self.socket_dir = self.tmp_dir / "sock"
        if (owner := self._user()) is not None:
            # The whole temp dir, so the server user can create its data and socket dirs.
            shutil.chown(self.tmp_dir, owner)

    @classmethod
    def find_bin_dir(cls) -> Path:
        """Debian keeps initdb and postgres in /usr/lib/postgresql/N/bin, off PATH."""
        on_path = shutil.which("initdb")
        if on_path is not None:
            return Path(on_path).resolve().parent
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/initdb"),
            key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
        )
        if not candidates:
            raise ServerNotInstalled(cls.name, "PostgreSQL's initdb is on neither PATH nor /usr/lib/postgresql/*/bin")
        return candidates[-1].parent

    @classmethod
    def check_installed(cls) -> None:
        bin_dir = cls.find_bin_dir()
        for tool in ("postgres", "pg_isready", "psql"):
            if not (bin_dir / tool).exists():
                raise ServerNotInstalled(cls.name, f"{bin_dir / tool} is missing")
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise ServerNotInstalled(
                    cls.name, "running as root, but there is no 'postgres' user to run initdb and postgres as"
                ) from None

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def _user(self) -> str | None:
        return SUPERUSER if os.geteuid() == 0 else None

    def _env(self) -> dict[str, str]:
        # No PG* variables from the caller's environment leak into the tools.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _allocate_ports(self) -> None:
        (self.port,) = free_ports(1)

    def all_ports(self) -> list[int]:
        return [self.port]

    def _prepare(self) -> None:
        self.socket_dir.mkdir(exist_ok=True)
        if (owner := self._user()) is not None:
            shutil.chown(self.data_dir, owner)
            shutil.chown(self.socket_dir, owner)
        run(
            [
                self.bin_dir / "initdb",
                "-D", self.data_dir,
                "-A", "trust",
                "-U", self.user,
                "-E", "UTF8",
                "--locale=C",
                "--no-sync",  # a test cluster need not survive a power cut
                "--no-instructions",
            ],
            log_path=self.log_path,
            env=self._env(),
            cwd=self.tmp_dir,
            user=self._user(),
        )  # fmt: skip

    def _command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-k", str(self.socket_dir),
            "-c", f"listen_addresses={self.host}",
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            *self.extra_args,
        ]  # fmt: skip

    def _ready(self) -> bool:
        # pg_isready exits 0 only once the server accepts connections (not while starting up).
        probe = [
            str(self.bin_dir / "pg_isready"),
            "-q",
            "-t",
            "2",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
        ]
        return subprocess.run(probe, env=self._env(), check=False, timeout=5).returncode == 0

    def psql(self, sql: str, *, database: str | None = None, timeout: float = 30.0) -> str:
        """Run SQL with psql (unaligned, tuples only) and return its output, stripped."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X", "-q", "-A", "-t",
                "-v", "ON_ERROR_STOP=1",
                "-h", self.host,
                "-p", str(self.port),
                "-U", self.user,
                "-d", database or self.database,
                "-c", sql,
            ],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()
