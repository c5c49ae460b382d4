"""An in-memory blob store. **For tests only**: it keeps nothing across restarts."""

from __future__ import annotations

from collections.abc import Iterator

from stave.errors import BlobNotFound
from stave.store.base import BlobInfo, BlobKey, BlobStore, Namespace

__all__ = ["MemoryStore"]


class MemoryStore(BlobStore):
    scheme = "memory"

    def __init__(self, name: str = "memory", *, durable: bool = True, **limits: int) -> None:
        super().__init__(name, **limits)
        self.durable = durable
        self.objects: dict[BlobKey, bytes] = {}

    @classmethod
    def from_url(cls, url: str, *, name: str | None = None) -> MemoryStore:
        """``memory://name``: for tests only."""
        return cls(name or url)

    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None:
        if replace or key not in self.objects:
            self.objects[key] = data
        return None

    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise BlobNotFound(f"{self.name}: {key} not found") from None

    def _has(self, key: BlobKey, locator: str | None) -> bool:
        return key in self.objects

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        self.objects.pop(key, None)

    def _list(self, namespace: Namespace) -> Iterator[str]:
        yield from sorted(key.digest for key in self.objects if key.namespace is namespace)
