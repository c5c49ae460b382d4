"""Opening a backend from a URL, through a registry of schemes.

``sqlite:///var/lib/stave/a``, ``file:///var/lib/stave/events``, ``s3://bucket/prefix?endpoint=…``, ``ipfs+http://127.0.0.1:5001``,
``redis://127.0.0.1:6379/0``, ``car:///var/lib/stave/archive``, ``memory://name`` (tests only).
Drivers are imported on first use, so a missing optional SDK only matters to its users, and
its absence produces an error naming the install command.
"""

from __future__ import annotations

import importlib
from typing import Final
from urllib.parse import urlsplit

from stave.errors import ConfigError
from stave.store.base import BlobStore

__all__ = ["DRIVERS", "open_store", "redact"]

# scheme → (module, class, pip extra that provides its SDK)
DRIVERS: Final[dict[str, tuple[str, str, str | None]]] = {
    "file": ("stave.store.local", "LocalStore", None),
    "sqlite": ("stave.store.sqlite", "SqliteStore", None),
    "memory": ("stave.store.memory", "MemoryStore", None),
    "s3": ("stave.store.s3", "S3Store", "s3"),
    "ipfs+http": ("stave.store.ipfs", "IpfsStore", None),
    "ipfs+https": ("stave.store.ipfs", "IpfsStore", None),
    "redis": ("stave.store.redis", "RedisCache", "redis"),
    "rediss": ("stave.store.redis", "RedisCache", "redis"),
    "car": ("stave.store.car", "CarArchive", None),
}


def open_store(url: str, *, name: str | None = None) -> BlobStore:
    """Open the backend a URL names. ``name`` overrides the backend's name in the index."""
    scheme = urlsplit(url).scheme
    if scheme not in DRIVERS:
        raise ConfigError(f"store URL {redact(url)!r}: unknown scheme {scheme!r}; known: {', '.join(sorted(DRIVERS))}")
    module_name, class_name, extra = DRIVERS[scheme]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'stave[{extra}]'" if extra else "reinstall stave"
        raise ConfigError(f"store URL {redact(url)!r} needs {exc.name}: {hint}") from None
    driver = getattr(module, class_name)
    store: BlobStore = driver.from_url(url, name=name)
    return store


def redact(url: str) -> str:
    """The URL without a password, for names and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
