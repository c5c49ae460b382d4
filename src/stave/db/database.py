"""Opening the database and bringing its schema up to date."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from stave.errors import ConfigError

__all__ = ["Database", "driver_sql", "in_list", "open_database", "sqlite_url"]

_MIGRATION_LOCK = 0x5747_0001  # advisory lock: two processes starting at once migrate one at a time


def driver_sql(connection: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the connection's driver's own style.

    For the hot paths that bypass SQLAlchemy's statement machinery (``exec_driver_sql``): the
    same text serves SQLite (``?``) and psycopg (``%s``). ``sql`` must hold no other ``?``.
    """
    return sql if connection.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def in_list(count: int) -> str:
    """``(?, ?, …)``: the placeholders of an ``IN`` list of ``count`` values."""
    return "(" + ", ".join(["?"] * count) + ")"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


class Database:
    """An engine and what callers need to know about it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextlib.contextmanager
    def write(self, *, lock: int | None = None, durable: bool = True) -> Iterator[Connection]:
        """A write transaction that holds the writer lock from its first statement.

        SQLite: ``BEGIN IMMEDIATE``, so two writers queue instead of failing to upgrade a read
        lock. PostgreSQL: a plain transaction; with ``lock`` it also takes the transaction-level
        advisory lock of that number, which serialises every process doing the same work (the
        log's sequencer uses this so any number of API processes can append).

        ``durable=False`` (SQLite only) commits without an fsync (``synchronous=NORMAL``): the
        commit survives a crash of the process but may be lost with power. Only for data that
        can be rebuilt from elsewhere, such as the store's index (from the copies themselves);
        the next durable commit makes it durable too, since the WAL is written in order.
        """
        options = {"stave_immediate": True, "stave_durable": durable}
        with self.engine.connect().execution_options(**options) as connection, connection.begin():
            if lock is not None and self.dialect == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
            yield connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which has ``on_conflict_do_nothing``/``_update`` on both SQLite and PostgreSQL."""
        if self.dialect == "postgresql":
            return postgresql_insert(table)
        return sqlite_insert(table)

    def close(self) -> None:
        self.engine.dispose()


def open_database(url: str, *, migrate: bool = True, migrations: str = "stave.db:migrations") -> Database:
    """Connect to ``url`` (``sqlite:///path`` or ``postgresql://…``) and apply migrations.

    ``migrations`` is the Alembic script location: the log's by default; a projection passes its
    own (with its own version table, so both can share one PostgreSQL database).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"database URL {url!r} is not valid: {exc}") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs["pool_pre_ping"] = True
    else:
        raise ConfigError(f"database URL {url!r}: only sqlite:// and postgresql:// are supported")
    engine = (
        create_engine(parsed, **kwargs)
        if parsed.database != ":memory:"
        else create_engine(parsed, poolclass=NullPool, **kwargs)
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    database = Database(engine)
    if migrate:
        upgrade(database, migrations)
    return database


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own would be deferred).
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives power loss
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    options = connection.get_execution_options()
    synchronous = "FULL" if options.get("stave_durable", True) else "NORMAL"
    info = connection.connection.info  # lives as long as the DBAPI connection
    if info.get("stave_synchronous", "FULL") != synchronous:  # a pragma, only when it changes
        connection.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
        info["stave_synchronous"] = synchronous
    connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("stave_immediate", False) else "BEGIN")


def upgrade(database: Database, migrations: str = "stave.db:migrations") -> None:
    """Apply every migration not yet applied (Alembic ``upgrade head``)."""
    # Imported here: Alembic takes ~0.4 s to import, and only opening a database needs it.
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", migrations)
    with database.write(lock=_MIGRATION_LOCK) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
