"""Configuration: a TOML file, ``STAVE_*`` environment variables, and command-line options.

Precedence, highest first: command-line options, environment, the config file, defaults.
The config file is ``--config FILE``, else ``$STAVE_CONFIG``, else ``./stave.toml`` if present.
Unknown keys in a file are errors (a typo must not silently fall back to a default).

Environment variables name a setting by its path in upper case joined with ``_``:
``STAVE_DATA_DIR`` is ``data_dir``, ``STAVE_EVENT_MAX_BYTES`` is ``event.max_bytes``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import platformdirs

from stave.errors import ConfigError
from stave.event import AdmissionPolicy, JsonLimits

if TYPE_CHECKING:
    from stave.graph.rules import Rules

__all__ = [
    "AnchorSettings",
    "AuthSettings",
    "DatabaseSettings",
    "EventSettings",
    "GraphSettings",
    "LogSettings",
    "ServerSettings",
    "Settings",
    "StoreSettings",
    "default_data_dir",
    "load_settings",
]

CONFIG_FILE_NAME = "stave.toml"
ENV_PREFIX = "STAVE_"


class EventSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Limits for incoming events (the event core's admission policy)."""

    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_future_skew: int = 300

    def policy(self) -> AdmissionPolicy:
        return AdmissionPolicy(
            limits=JsonLimits(max_bytes=self.max_bytes, max_depth=self.max_depth),
            max_future_skew=self.max_future_skew,
        )


class DatabaseSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where indexes and the log live: ``sqlite:///…`` (default) or ``postgresql://…``."""

    url: str = ""


class StoreSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The replicated store. Empty ``durable`` means two local directories under the data dir
    (``sqlite://``: events in SQLite, media as files)."""

    durable: list[str] = msgspec.field(default_factory=list)
    cache: str = ""
    archive: str = ""
    min_redundancy: int = 2
    timeout: float = 10.0


class LogSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The log: its origin (the checkpoint's first line, also the key's name), key and cadence."""

    origin: str = "stave.local/log"
    key_file: str = ""
    checkpoint_every: int = 1000
    checkpoint_interval: float = 5.0


class AnchorSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Ledgers the latest checkpoint is anchored on; empty means the local witness file."""

    ledgers: list[str] = msgspec.field(default_factory=list)
    interval: float = 60.0


class ServerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``stave serve``: where it listens and the request limits it enforces."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_batch: int = 512
    max_batch_bytes: int = 16 << 20
    max_media_bytes: int = 64 << 20
    # Group commit under load (PostgreSQL's commit_delay and commit_siblings): with at least
    # `commit_siblings` submissions waiting, the store stage waits up to `commit_delay` seconds
    # for more to join a batch. One client alone never waits; 0 turns it off.
    commit_delay: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.01
    commit_siblings: Annotated[int, msgspec.Meta(ge=1)] = 5


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who may write: proof-of-work credentials, signed requests, rate limits (seed 004)."""

    required: bool = True
    difficulty: int = 16
    max_difficulty: int = 24
    challenge_ttl: float = 120.0
    rate_per_address: float = 200.0
    rate_per_credential: float = 500.0
    burst: int = 1000
    redis: str = ""
    relays_only: bool = False  # accept writes only from relays (and admins), as seed 004 allows


class GraphSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The music graph: its database, and the governance rules (docs/governance.md) every replica shares."""

    url: str = ""  # empty: sqlite:///<data dir>/graph.db
    # `stave serve` follows the log into the graph in the background; false where a separate
    # `stave project follow` process does it (one follower for many API servers).
    follow: bool = True
    follow_interval: float = 0.5  # seconds between rounds while the graph is up to date
    min_votes: int = 3
    voting_period: int = 7 * 86400
    no_vote_extension: int = 72 * 3600
    destructive_min_open: int = 48 * 3600
    accept_unreviewed: bool = True
    accept_unreviewed_destructive: bool = False
    voters: list[str] | None = None
    finalizers: list[str] | None = None
    reward_distributors: list[str] = msgspec.field(default_factory=list)

    def rules(self) -> Rules:
        from stave.graph.rules import Rules  # here: importing the graph package would slow every command

        return Rules(
            min_votes=self.min_votes,
            voting_period=self.voting_period,
            no_vote_extension=self.no_vote_extension,
            destructive_min_open=self.destructive_min_open,
            accept_unreviewed=self.accept_unreviewed,
            accept_unreviewed_destructive=self.accept_unreviewed_destructive,
            voters=None if self.voters is None else frozenset(self.voters),
            finalizers=None if self.finalizers is None else frozenset(self.finalizers),
            reward_distributors=frozenset(self.reward_distributors),
        )


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Every setting of stave. Later parts add their sections here."""

    data_dir: str | None = None
    event: EventSettings = msgspec.field(default_factory=EventSettings)
    database: DatabaseSettings = msgspec.field(default_factory=DatabaseSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    anchor: AnchorSettings = msgspec.field(default_factory=AnchorSettings)
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    graph: GraphSettings = msgspec.field(default_factory=GraphSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir()

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'stave.db'}"

    @property
    def graph_url(self) -> str:
        return self.graph.url or f"sqlite:///{self.data_path / 'graph.db'}"

    @property
    def durable_urls(self) -> list[str]:
        if self.store.durable:
            return list(self.store.durable)
        return [_default_store_url(self.data_path / "store" / name) for name in ("a", "b")]

    @property
    def log_key_path(self) -> Path:
        return Path(self.log.key_file) if self.log.key_file else self.data_path / "log" / "signer.key"

    @property
    def ledger_urls(self) -> list[str]:
        if self.anchor.ledgers:
            return list(self.anchor.ledgers)
        return [f"witness://{self.data_path / 'anchor' / 'witness.log'}"]

    @property
    def archive_url(self) -> str:
        return self.store.archive or f"car://{self.data_path / 'store' / 'archive'}"


def default_data_dir() -> Path:
    """The platform's user data directory, e.g. ``~/.local/share/stave`` on Linux."""
    return Path(platformdirs.user_data_dir("stave", appauthor=False))


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and ``overrides`` (dotted keys)."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    source = "defaults"
    path = _config_path(config_file, environ, cwd or Path.cwd())
    if path is not None:
        source = str(path)
        merged = _read_toml(path)
    for dotted, value in _from_environ(environ).items():
        _set_dotted(merged, dotted, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(merged, dotted, value)
    try:
        # strict=False lets "123" from the environment become an int; the file's types are TOML's.
        return msgspec.convert(merged, type=Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration (from {source}, environment and options): {exc}") from None


def _config_path(explicit: Path | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return explicit
    from_env = environ.get(ENV_PREFIX + "CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"config file {path} (from ${ENV_PREFIX}CONFIG) does not exist")
        return path
    local = cwd / CONFIG_FILE_NAME
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _env_names() -> dict[str, str]:
    """Map each ``STAVE_…`` variable name to the dotted setting it sets."""
    names: dict[str, str] = {}

    def visit(struct: type[msgspec.Struct], prefix: str) -> None:
        for field in msgspec.structs.fields(struct):
            dotted = f"{prefix}{field.name}"
            if isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
                visit(field.type, dotted + ".")
            else:
                names[ENV_PREFIX + dotted.replace(".", "_").upper()] = dotted

    visit(Settings, "")
    return names


_LIST_SETTINGS = frozenset(
    {"store.durable", "anchor.ledgers", "graph.voters", "graph.finalizers", "graph.reward_distributors"}
)


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """Values of ``STAVE_*`` variables; a list setting takes URLs separated by spaces or commas."""
    names = _env_names()
    values: dict[str, Any] = {}
    for name, value in environ.items():
        if name in names:
            dotted = names[name]
            values[dotted] = value.replace(",", " ").split() if dotted in _LIST_SETTINGS else value
    return values


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = target
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"setting {part!r} must be a table to hold {dotted!r}")
        node = child
    node[last] = value


def _default_store_url(directory: Path) -> str:
    """The embedded default backend in ``directory``: events in SQLite, unless the directory
    already holds events as files (a data dir from before SQLite was the default), which keep
    their driver."""
    directory = directory.absolute()
    if (directory / "events").is_dir() and not (directory / "events.sqlite3").exists():
        return f"file://{directory}"
    return f"sqlite://{directory}"
