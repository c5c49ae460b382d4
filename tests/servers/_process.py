"""What every server of the harness shares: free ports, a process group, readiness, teardown.

A `Server` owns a temporary directory (data, config, log), a set of ports picked at
runtime, and at most one running process group. `start()` and `stop()` can be repeated:
the ports and the data directory stay the same, so a fault test can stop a server and
bring it back where clients expect it. `close()` (or leaving the `with` block) stops it
and deletes the directory. Servers still open when the interpreter exits are closed by
an atexit hook; if the interpreter is SIGKILLed, the kernel kills its servers (parent-death
signal) and the next run deletes their directories.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

HOST = "127.0.0.1"
INSTALL_SCRIPT = "scripts/install-servers.sh"
KEEP_DIRS_ENV = "STAVE_KEEP_SERVER_DIRS"  # set to 1 to keep temp dirs (logs) for debugging


class ServerError(RuntimeError):
    """A server of the harness could not be started or used."""


class ServerNotInstalled(ServerError):
    """The server's binary is missing; the message names the install command."""

    def __init__(self, server: str, what: str) -> None:
        self.install_command = f"{INSTALL_SCRIPT} {server}"
        super().__init__(f"{what}. Install it with: {self.install_command}")


class ServerStartError(ServerError):
    """The server exited or did not become ready in time; the message ends with its log."""


def cache_dir() -> Path:
    """Where scripts/install-servers.sh puts the npm-installed servers (js-ipfs, anvil)."""
    if env := os.environ.get("STAVE_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stave"


# --- ports -----------------------------------------------------------------------------

# Ports handed out by this process and not yet released: two servers started back to back
# must not get the same port just because the first has not bound it yet.
_reserved: set[int] = set()
_LOWEST_PORT = 10000  # stay clear of well-known and commonly configured ports


def _ephemeral_low() -> int:
    """The kernel hands out outgoing connections' ports from here up; we pick below it."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # Servers set SO_REUSEADDR, so a port in TIME_WAIT is usable by them: test the same way.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def port_listening(port: int, host: str = HOST) -> bool:
    """Does something accept TCP connections on the port? (Probing by connecting, not by
    binding: a test bind could make the server's own bind fail.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


def free_ports(count: int, *, also_free_at: int | None = None) -> list[int]:
    """`count` distinct ports that are free on 127.0.0.1 right now, reserved in this process.

    Races with other processes cannot be ruled out (a port is only ours once the server
    binds it), so we make them unlikely: ports are drawn at random below the kernel's
    ephemeral range, where outgoing connections never land and other test jobs rarely
    look, and `Server.start()` retries with new ports if the first start fails on a bind.
    With `also_free_at=k`, port+k must be free too (SeaweedFS puts gRPC at port+10000).
    """
    offset = also_free_at or 0
    high = _ephemeral_low() - offset
    if high - _LOWEST_PORT < 1000:
        raise ServerError(f"no room for ports below the ephemeral range ({_ephemeral_low()})")
    rng = random.SystemRandom()
    chosen: list[int] = []
    for _ in range(1000):
        port = rng.randrange(_LOWEST_PORT, high)
        group = {port, port + offset}
        if group & _reserved or not all(port_is_free(p) for p in group):
            continue
        _reserved.update(group)
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    release_ports([p + d for p in chosen for d in {0, offset}])
    raise ServerError(f"could not find {count} free ports on {HOST}")


def release_ports(ports: Sequence[int]) -> None:
    _reserved.difference_update(ports)


# --- processes -------------------------------------------------------------------------


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ManagedProcess:
    """One command in its own session and process group, output appended to a log file."""

    def __init__(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.user = user
        self.stop_signal = stop_signal
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} $ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                _die_with_parent() + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                # Its own session: it is the leader of a new process group whose id is its pid,
                # so teardown can signal everything it spawned, and a Ctrl-C meant for pytest
                # does not reach it before the fixture's teardown does.
                start_new_session=True,
                **_as_user(self.user),
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def _exited(self, timeout: float) -> bool:
        """Wait until the leader exits, but leave it a zombie (WNOWAIT): while it is one,
        its pid, which is the group id, cannot be reused by an unrelated process."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # already reaped
                return True
            if info is not None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0, *, sig: int | None = None) -> None:
        """Signal the group (stop_signal by default), give it `timeout` seconds, then SIGKILL
        the whole group: the leader if it hung, and any child it left behind. Descendants
        that moved to a session of their own (PostgreSQL's backends do) are SIGKILLed too."""
        if self.popen is None or self.popen.returncode is not None:
            return
        pgid = self.pid
        family = descendants(pgid)
        _signal_group(pgid, self.stop_signal if sig is None else sig)
        self._exited(timeout)
        _signal_group(pgid, signal.SIGKILL)
        for pid, started in family:
            if process_alive(pid, started):  # still the same process, not a reused pid
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        self._exited(5.0)
        self.popen.wait()

    def kill(self) -> None:
        """SIGKILL the group at once: a crash, for fault tests."""
        self.stop(0, sig=signal.SIGKILL)


def _die_with_parent() -> list[str]:
    """A prefix that makes the server die with us even if we are SIGKILLed and no teardown
    runs (the kernel's parent-death signal, set by util-linux's setpriv before it execs the
    server). Only from the main thread: the signal fires when the *thread* that started the
    process ends, which would kill servers started from a short-lived worker thread."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return []
    return [setpriv, "--pdeathsig", "KILL", "--"]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at field 3


def process_alive(pid: int, started: int | None) -> bool:
    """Is `pid` still the process that had start time `started`, and not a zombie?"""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and int(fields[19]) == started


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of every live descendant of `root`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[tuple[int, int]] = []
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        started = start_time(pid)
        if started is not None:
            found.append((pid, started))
        todo.extend(children.get(pid, []))
    return found


def _as_user(user: str | None) -> dict[str, Any]:
    """Popen arguments to run as `user` (we are root): its uid, its group, no extra groups."""
    if user is None:
        return {}
    import pwd  # POSIX only; the harness as a whole is

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> None:
    """Run a one-off setup command (initdb, jsipfs init), output to the log; raise with its tail."""
    args = [os.fspath(a) for a in argv]
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%H:%M:%S')} $ {' '.join(args)}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=env,
                cwd=cwd,
                check=False,
                start_new_session=True,  # a timeout kills it alone, not our group
                **_as_user(user),
            ).returncode
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"{args[0]} timed out after {timeout}s\n{log_tail(log_path)}") from exc
    if rc != 0:
        raise ServerStartError(f"{' '.join(args)} failed with exit code {rc}\n--- {log_path} ---\n{log_tail(log_path)}")


# --- servers ---------------------------------------------------------------------------

_open_servers: weakref.WeakSet[Server] = weakref.WeakSet()
DIR_PREFIX = "stave-server-"
OWNER_FILE = "owner.pid"
_swept: set[Path] = set()


def _sweep_stale_dirs(base: Path) -> None:
    """Delete server directories left by test processes that were killed (SIGKILL runs no
    teardown; their servers died with them, see _die_with_parent). Once per process."""
    if base in _swept:
        return
    _swept.add(base)
    for owner in base.glob(f"{DIR_PREFIX}*/{OWNER_FILE}"):
        try:
            pid, started = (int(x) for x in owner.read_text().split())
        except (OSError, ValueError):
            continue
        if not process_alive(pid, started):
            shutil.rmtree(owner.parent, ignore_errors=True)


@atexit.register
def _close_all() -> None:
    for server in list(_open_servers):
        server.close()


class Server:
    """Base class: subclasses say how to prepare, start and probe one kind of server."""

    name: ClassVar[str]  # the argument of scripts/install-servers.sh
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 10.0
    stop_signal: ClassVar[int] = signal.SIGTERM
    port_attempts: ClassVar[int] = 3  # first start: retry with new ports if a bind failed

    def __init__(self, *, base_dir: Path | None = None) -> None:
        if sys.platform != "linux":
            raise ServerError("tests/servers runs servers on Linux only")
        self.check_installed()
        _sweep_stale_dirs(Path(base_dir or tempfile.gettempdir()))
        self.tmp_dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{self.name}-", dir=base_dir))
        # Whose directory this is, so a later run can delete it if we die without teardown.
        (self.tmp_dir / OWNER_FILE).write_text(f"{os.getpid()} {start_time(os.getpid())}")
        self.data_dir = self.tmp_dir / "data"
        self.data_dir.mkdir()
        self.log_path = self.tmp_dir / f"{self.name}.log"
        self.startup_seconds: float | None = None  # of the last start(), for the README's table
        self._proc: ManagedProcess | None = None
        self._prepared = False
        self._have_ports = False
        self._closed = False
        _open_servers.add(self)

    # -- hooks ---------------------------------------------------------------------------

    @classmethod
    def check_installed(cls) -> None:
        """Raise ServerNotInstalled if a binary is missing."""

    @classmethod
    def unsupported_reason(cls) -> str | None:
        """Why this server cannot be installed on this machine at all, or None."""
        if sys.platform != "linux":
            return f"the {cls.name} server harness needs Linux (found {sys.platform})"
        return None

    def _allocate_ports(self) -> None:
        raise NotImplementedError

    def all_ports(self) -> list[int]:
        """Every TCP port the server listens on (all free again once it is closed)."""
        raise NotImplementedError

    def _prepare(self) -> None:
        """One-time setup of the data directory before the first start (initdb, init)."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server answers a real request; may raise while it is not up yet."""
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _user(self) -> str | None:
        return None

    def _after_stop(self) -> None:
        """Clean up what the server leaves outside tmp_dir."""

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.alive() else None

    def start(self) -> Self:
        if self._closed:
            raise ServerError(f"{self.name} server is closed")
        if self.running:
            return self
        first = not self._prepared
        attempts = self.port_attempts if first else 1
        for attempt in range(1, attempts + 1):
            if first:
                self._allocate_ports()
                self._have_ports = True
            try:
                if first:
                    self._prepare()
                    self._prepared = True
                self._launch()
                return self
            except ServerStartError as exc:
                if not first or attempt == attempts or not _bind_failed(str(exc)):
                    raise
                # Someone took a port between our check and the server's bind: new ports,
                # and a fresh data directory since _prepare() may have written the old ones.
                release_ports(self.all_ports())
                self._have_ports = self._prepared = False
                shutil.rmtree(self.data_dir, ignore_errors=True)
                self.data_dir.mkdir()
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        proc = ManagedProcess(
            self._command(),
            log_path=self.log_path,
            cwd=self.tmp_dir,
            env=self._env(),
            user=self._user(),
            stop_signal=self.stop_signal,
        )
        started = time.monotonic()
        proc.start()
        self._proc = proc
        try:
            self._wait_ready(proc, started)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def _wait_ready(self, proc: ManagedProcess, started: float) -> None:
        deadline = started + self.start_timeout
        last_error: BaseException | None = None
        while True:
            if not proc.alive():
                raise ServerStartError(
                    f"{self.name} server exited with code {proc.returncode()} before it was ready: "
                    f"{' '.join(proc.argv)}\n--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
                )
            try:
                # Every port must be listening, not only the one the probe uses: until then
                # another process could still take one of them.
                if all(port_listening(p) for p in self.all_ports()) and self._ready():
                    return
            except Exception as exc:  # not up yet: connection refused, 503, ...
                if isinstance(exc, urllib.error.HTTPError):
                    exc.close()  # it holds the response's socket: a ResourceWarning if left to the GC
                last_error = exc
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"{self.name} server not ready after {self.start_timeout:.0f}s "
                    f"(last probe error: {last_error!r}): {' '.join(proc.argv)}\n"
                    f"--- last lines of {self.log_path} ---\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server gracefully (SIGKILL after stop_timeout); ports and data stay."""
        if self._proc is not None:
            self._proc.stop(self.stop_timeout)
            self._proc = None
            self._after_stop()

    def kill(self) -> None:
        """Crash the server (SIGKILL to its process group); start() brings it back."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None
            self._after_stop()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server, release its ports, delete its temporary directory."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            _open_servers.discard(self)
            if self._have_ports:
                release_ports(self.all_ports())
            if os.environ.get(KEEP_DIRS_ENV) != "1":
                shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {state} at {self.tmp_dir}>"


def _bind_failed(message: str) -> bool:
    text = message.lower()
    # redis, postgres, anvil: "Address already in use"; js-ipfs: EADDRINUSE; weed mini checks
    # its ports first: "Port allocation failed: port P ... is not available".
    return any(s in text for s in ("address already in use", "eaddrinuse", "could not bind", "port allocation failed"))
