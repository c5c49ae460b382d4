"""Pytest fixtures that start real servers: a pytest plugin.

Load it once, from the root conftest or a test module::

    pytest_plugins = ["tests.servers.fixtures"]

or on the command line: ``python -m pytest -p tests.servers.fixtures``. The name
``tests.servers`` resolves only with the repository root on ``sys.path``: ``python -m
pytest`` puts it there, plain ``.venv/bin/pytest`` does not (add ``pythonpath = ["."]`` to
``[tool.pytest.ini_options]``, or see tests/integration/test_servers_smoke.py).

Fixtures (mark each test with the server's marker, so ``-m "not ipfs"`` deselects it):

============================  =========  =================================================
fixture                       scope      yields
============================  =========  =================================================
``redis_server``              function   RedisServer: ``url``, ``host``, ``port``, ``command()``
``postgres_server``           session    PostgresServer: ``dsn``, ``host``, ``port``, ``user``,
                                         ``database``, ``psql()``
``s3_server``                 session    SeaweedServer: ``endpoint_url``, ``access_key``,
                                         ``secret_key``, ``region``, ``boto3_kwargs``, ``env``
``ipfs_server``               session    IpfsServer: ``api_url``, ``api_port``, ``api()``
``evm_server``                function   AnvilServer: ``url``, ``chain_id``, ``accounts``, ``rpc()``
``fresh_<name>_server``       function   the same, a new server for this test alone
============================  =========  =================================================

Redis and anvil start in well under a second, so their plain fixture is already per test.
PostgreSQL, SeaweedFS and js-ipfs take longer: their plain fixture is one server for the
whole session, shared by every test that asks for it, so tests must use names (keys,
tables, buckets) of their own. A test that stops, kills or restarts a server
(``stop()``, ``kill()``, ``start()``, ``restart()``: same ports and data, as clients expect)
must use a ``fresh_`` fixture. Every server also has ``data_dir``, ``tmp_dir`` and
``log_path``; every server is stopped and its directory deleted at teardown, whatever the
test did.

A missing server fails the test with the command that installs it
(``scripts/install-servers.sh redis``); it is skipped only where it cannot be installed at all
(another OS, a CPU no binary is built for), with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from ._process import Server, ServerNotInstalled
from .anvil import AnvilServer
from .ipfs import IpfsServer
from .postgres import PostgresServer
from .redis import RedisServer
from .seaweed import SeaweedServer

S = TypeVar("S", bound=Server)
T = TypeVar("T")


def serve(cls: type[S]) -> Iterator[S]:
    """Start a `cls` server for a fixture: skip where impossible, fail with the install hint
    where missing, always close it afterwards."""
    reason = cls.unsupported_reason()
    if reason is not None:
        pytest.skip(reason)
    server = _or_fail(cls)  # the constructor checks that the binaries are there
    try:
        _or_fail(server.start)  # some things show only when started (js-ipfs and Node.js)
        yield server
    finally:
        server.close()


def _or_fail(make: Callable[[], T]) -> T:
    """make(), turning ServerNotInstalled into a plain test failure with its install hint."""
    try:
        return make()
    except ServerNotInstalled as exc:
        hint = str(exc)
    pytest.fail(hint, pytrace=False)  # outside the except: no "during handling" traceback


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from serve(RedisServer)


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    yield from serve(RedisServer)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    yield from serve(PostgresServer)


@pytest.fixture
def fresh_postgres_server() -> Iterator[PostgresServer]:
    yield from serve(PostgresServer)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedServer]:
    yield from serve(SeaweedServer)


@pytest.fixture
def fresh_s3_server() -> Iterator[SeaweedServer]:
    yield from serve(SeaweedServer)


@pytest.fixture(scope="session")
def ipfs_server() -> Iterator[IpfsServer]:
    yield from serve(IpfsServer)


@pytest.fixture
def fresh_ipfs_server() -> Iterator[IpfsServer]:
    yield from serve(IpfsServer)


@pytest.fixture
def evm_server() -> Iterator[AnvilServer]:
    yield from serve(AnvilServer)


@pytest.fixture
def fresh_evm_server() -> Iterator[AnvilServer]:
    yield from serve(AnvilServer)
