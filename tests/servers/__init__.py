"""Real backend servers for tests and benchmarks, on free 127.0.0.1 ports, always stopped.

Each server is a context manager; see README.md beside this file, and fixtures.py for the
pytest fixtures. Install the servers with scripts/install-servers.sh.
"""

from ._process import Server, ServerError, ServerNotInstalled, ServerStartError, cache_dir, free_ports, port_is_free
from .redis import RedisServer

__all__ = [
    "RedisServer",
    "Server",
    "ServerError",
    "ServerNotInstalled",
    "ServerStartError",
    "cache_dir",
    "free_ports",
    "port_is_free",
]
