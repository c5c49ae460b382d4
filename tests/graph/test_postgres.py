"""The same log projected on SQLite and on PostgreSQL gives the same digest and the same answers."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from stave import graph
from stave.db import open_database
from stave.graph.projector import Projector
from tests.graph.scenario import events
from tests.graph.test_projection import BEATLES, PAUL
from tests.graph.world import World


def _database(postgres_server: Any) -> str:
    name = f"graph_{uuid.uuid4().hex[:12]}"
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    return str(postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}")


@pytest.mark.postgres
def test_sqlite_and_postgresql_agree(postgres_server: Any, tmp_path: Path) -> None:
    world = World(tmp_path / "node")  # the log and store; the graph on SQLite
    pg = graph.open_graph_database(_database(postgres_server))
    try:
        world.project(*events())
        on_pg = Projector(pg, world.log, world.store, world.rules, batch_size=7)
        assert on_pg.catch_up() == len(events())
        sqlite_digest = graph.state_digest(world.graph)
        pg_digest = graph.state_digest(pg)
        assert pg_digest.tables == sqlite_digest.tables
        assert pg_digest.digest == sqlite_digest.digest
        for ask in (
            lambda db: graph.discography(db, PAUL),
            lambda db: graph.members(db, BEATLES, "1962-08-18"),
            lambda db: graph.label_releases(db, "label-parent"),
            lambda db: graph.collaborators(db, "ringo", 2),
            lambda db: graph.history(db, "ringo"),
            lambda db: graph.claims(db, None),
        ):
            assert ask(pg) == ask(world.graph)
        # search: accent- and case-insensitive on both (trigram on PostgreSQL, FTS5 on SQLite)
        for query in ("beyonce", "BEYONCÉ knowles", "seances 1", "imprint nº"):
            on_sqlite = [hit["id"] for hit in graph.search(world.graph, query)]
            assert on_sqlite, query
            assert on_sqlite[0] in [hit["id"] for hit in graph.search(pg, query)], query
        # rebuild on PostgreSQL, and the reconcile of the live one against a fresh SQLite rebuild
        assert on_pg.rebuild() == len(events())
        assert graph.state_digest(pg) == pg_digest
        assert graph.reconcile(on_pg, f"sqlite:///{tmp_path}/scratch.db") == []
    finally:
        pg.close()
        world.close()


@pytest.mark.postgres
def test_the_graph_can_share_the_logs_postgresql_database(postgres_server: Any) -> None:
    url = _database(postgres_server)
    log_database = open_database(url)  # the log's migrations
    graph_database = graph.open_graph_database(url)  # the graph's, with their own version table
    try:
        with graph_database.engine.connect() as connection:
            versions = {
                table: connection.exec_driver_sql(f"SELECT version_num FROM {table}").scalar_one()  # noqa: S608
                for table in ("alembic_version", "graph_alembic_version")
            }
            has_trigram = connection.exec_driver_sql("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
            assert has_trigram.scalar_one() == 1
        assert versions["graph_alembic_version"].startswith("g")  # the graph's head, in its own table
        assert not versions["alembic_version"].startswith("g")
        graph.open_graph_database(url).close()  # opening again migrates nothing and fails nothing
    finally:
        graph_database.close()
        log_database.close()
