"""Real backend servers for tests and benchmarks, on free 127.0.0.1 ports, always stopped.

Each server is a context manager (``with RedisServer() as redis: ...``) with ``start()``,
``stop()``, ``kill()`` and ``restart()`` that keep its ports and data. fixtures.py has the
pytest fixtures, README.md the details; scripts/install-servers.sh installs the servers.
"""

from ._process import (
    HOST,
    Server,
    ServerError,
    ServerNotInstalled,
    ServerStartError,
    cache_dir,
    descendants,
    free_ports,
    port_is_free,
    port_listening,
    process_alive,
    start_time,
)
from .anvil import DEV_ACCOUNT, DEV_PRIVATE_KEY, AnvilServer
from .ipfs import IpfsServer, parse_cid
from .postgres import PostgresServer
from .redis import RedisServer
from .seaweed import SeaweedServer

__all__ = [
    "DEV_ACCOUNT",
    "DEV_PRIVATE_KEY",
    "HOST",
    "AnvilServer",
    "IpfsServer",
    "PostgresServer",
    "RedisServer",
    "SeaweedServer",
    "Server",
    "ServerError",
    "ServerNotInstalled",
    "ServerStartError",
    "cache_dir",
    "descendants",
    "free_ports",
    "parse_cid",
    "port_is_free",
    "port_listening",
    "process_alive",
    "start_time",
]
