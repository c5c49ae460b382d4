"""The targets with a NUL byte against a server on PostgreSQL, where they used to be a 500.

PostgreSQL refuses text holding NUL even in a comparison (``psycopg.DataError``), so before the
request limits a ``?author=%00`` reached the query and failed as an internal error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from stave.db import open_database
from tests.hostile.catalogue import NUL_TARGETS
from tests.server.process import StaveServer
from tests.servers import PostgresServer

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server_on_postgres(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StaveServer]:
    name = f"stave_hostile_{uuid.uuid4().hex[:12]}"  # a database of its own on the shared server
    admin = open_database(postgres_server.dsn, migrate=False)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.close()
    url = postgres_server.dsn.rsplit("/", 1)[0] + f"/{name}"
    server = StaveServer(tmp_path_factory.mktemp("hostile-pg"), env={"STAVE_DATABASE_URL": url}).start()
    yield server
    server.stop()


@pytest.mark.parametrize(("name", "target"), NUL_TARGETS, ids=[name for name, _ in NUL_TARGETS])
def test_nul_in_the_target_is_400_on_postgresql(server_on_postgres: StaveServer, name: str, target: str) -> None:
    with httpx.Client(base_url=server_on_postgres.url, timeout=30) as client:
        response = client.get(target)
        assert response.status_code == 400, response.text
        assert response.json()["reason"] == "invalid"
        # The same filter without the NUL is an ordinary query on the same database.
        assert client.get(target.replace("%00", "")).status_code in (200, 400, 404)
    assert "DataError" not in server_on_postgres.log_path.read_text()
