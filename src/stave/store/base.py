"""The blob-store contract: one small interface, the checks in the base class.

A driver implements private ``_put``/``_get``/``_has`` (and optionally ``_delete``, ``_list``,
``_get_many``, ``_health``). The public methods, which every caller uses, validate keys (so no
driver sees a path trick), enforce the size limit, **verify every read** (an event must admit
with the id it is stored under and be in canonical form; a media blob must hash to its name),
and map each SDK's exceptions onto stave's: ``BlobNotFound``, ``IntegrityError``,
``BackendUnavailable``, ``StorageError``. No driver can forget one of these.
"""

from __future__ import annotations

import enum
import hashlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypeVar

from stave.errors import (
    BackendUnavailable,
    BlobNotFound,
    DigestMismatchError,
    IntegrityError,
    StorageError,
    VerificationError,
)
from stave.event import DEFAULT_POLICY, AdmissionPolicy, admit

__all__ = [
    "BlobInfo",
    "BlobKey",
    "BlobStore",
    "Health",
    "Namespace",
    "verify_blob",
]

T = TypeVar("T")
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
MAX_EVENT_BYTES: Final = 1 << 20


class Namespace(enum.StrEnum):
    """What a blob is: a signed event (addressed by its id) or a media file (by its SHA-256)."""

    EVENTS = "events"
    MEDIA = "media"


@dataclass(frozen=True, slots=True)
class BlobKey:
    """The address of a blob. The digest is validated, so it is safe in paths and URLs."""

    namespace: Namespace
    digest: str

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str) or not _DIGEST.match(self.digest):
            raise ValueError(f"a blob address is 64 lowercase hex characters, got {self.digest!r:.80}")

    @classmethod
    def event(cls, event_id: str) -> BlobKey:
        return cls(Namespace.EVENTS, event_id)

    @classmethod
    def media(cls, sha256: str) -> BlobKey:
        return cls(Namespace.MEDIA, sha256)

    def __str__(self) -> str:
        return f"{self.namespace.value}/{self.digest}"


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """Metadata stored beside a blob where the backend can hold it (seed 000's S3 headers)."""

    content_type: str = "application/json"
    event_type: str | None = None
    author: str | None = None
    created_at: int | None = None


@dataclass(frozen=True, slots=True)
class Health:
    backend: str
    ok: bool
    latency_ms: float
    detail: str = ""
    durable: bool = True
    extra: dict[str, object] = field(default_factory=dict)


def verify_blob(key: BlobKey, data: bytes, policy: AdmissionPolicy = DEFAULT_POLICY) -> None:
    """Return None if ``data`` is exactly what ``key`` addresses; raise ``IntegrityError`` otherwise.

    An event copy must admit (strict JSON, schema, signature) with ``key.digest`` as its id,
    and be byte-for-byte its RFC 8785 form: a copy that differs in any byte is corrupt, even
    if it would still verify. A media copy must hash to ``key.digest``.
    """
    if key.namespace is Namespace.MEDIA:
        actual = hashlib.sha256(data).hexdigest()
        if actual != key.digest:
            raise IntegrityError(f"{key}: content hashes to {actual}")
        return
    try:
        event = admit(data, policy, expected_id=key.digest)
    except DigestMismatchError as exc:
        raise IntegrityError(f"{key}: {exc}") from None
    except VerificationError as exc:
        raise IntegrityError(f"{key}: copy does not verify: {exc}") from None
    if event.canonical_bytes() != data:
        raise IntegrityError(f"{key}: copy is not in canonical form")


class BlobStore(ABC):
    """A place that holds blobs by address. Subclasses implement the ``_`` methods only.

    ``durable`` says whether a copy here counts towards redundancy (a cache with a TTL does
    not). ``put`` returns an optional *locator* (e.g. an IPFS CID) that the caller must keep
    and hand back to ``get``; path-addressed backends return None.
    """

    scheme: str = ""
    durable: bool = True
    #: read order: cheaper backends are tried first (cache < local < S3 < IPFS < archive)
    cost: int = 50
    #: SDK exceptions that mean "try again later" (connection refused, timeouts, 5xx)
    transient_errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def __init__(self, name: str, *, max_bytes: int = MAX_EVENT_BYTES, media_max_bytes: int = 1 << 30) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self.media_max_bytes = media_max_bytes

    # --- public contract -----------------------------------------------------------------

    def put(self, key: BlobKey, data: bytes, info: BlobInfo | None = None, *, replace: bool = False) -> str | None:
        """Store ``data`` under ``key``; idempotent. ``replace`` overwrites a (corrupt) copy."""
        self._check_size(key, len(data))
        return self._call("put", key, lambda: self._put(key, data, info or BlobInfo(), replace))

    def put_many(self, items: Sequence[tuple[BlobKey, bytes, BlobInfo]]) -> list[str | StorageError | None]:
        """Store several blobs; per item its locator or the error. Drivers may batch."""
        results: list[str | StorageError | None] = []
        for key, data, info in items:
            try:
                results.append(self.put(key, data, info))
            except StorageError as exc:
                results.append(exc)
        return results

    def fill(self, key: BlobKey, data: bytes) -> None:
        """Store a copy read from elsewhere (read-through); caches use a shorter lifetime."""
        self.put(key, data, BlobInfo())

    def put_path(self, key: BlobKey, source: Path) -> str | None:
        """Store a file; drivers that can stream override this (the default reads it whole)."""
        self._check_size(key, source.stat().st_size)
        return self.put(key, source.read_bytes(), BlobInfo(content_type="application/octet-stream"))

    def get_to_path(self, key: BlobKey, destination: Path, locator: str | None = None) -> None:
        """Write the verified blob to ``destination``; streaming drivers override this."""
        destination.write_bytes(self.get(key, locator))

    def get(self, key: BlobKey, locator: str | None = None) -> bytes:
        """Return the verified bytes of ``key``; raise BlobNotFound or IntegrityError."""
        data = self._call("get", key, lambda: self._get(key, locator))
        if len(data) > self._limit(key):
            raise IntegrityError(f"{self.name}: {key}: copy is {len(data)} bytes, over the limit {self._limit(key)}")
        try:
            verify_blob(key, data)
        except IntegrityError as exc:
            raise IntegrityError(f"{self.name}: {exc}") from None
        return data

    def get_unverified(self, key: BlobKey, locator: str | None = None) -> bytes:
        """The raw bytes, unchecked: for scrub reports and fault tests only."""
        return self._call("get", key, lambda: self._get(key, locator))

    def has(self, key: BlobKey, locator: str | None = None) -> bool:
        """True if a copy exists (not verified; use ``get`` to trust it)."""
        return self._call("has", key, lambda: self._has(key, locator))

    def get_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | StorageError]:
        """Verified bytes or the error for each key (backends with pipelines override ``_get_many``)."""
        raw = self._call_many(keys)
        out: dict[BlobKey, bytes | StorageError] = {}
        for key in keys:
            data = raw.get(key)
            if isinstance(data, StorageError):
                out[key] = data
            elif data is None:
                out[key] = BlobNotFound(f"{self.name}: {key} not found")
            else:
                try:
                    verify_blob(key, data)
                    out[key] = data
                except IntegrityError as exc:
                    out[key] = IntegrityError(f"{self.name}: {exc}")
        return out

    def delete(self, key: BlobKey, locator: str | None = None) -> None:
        """Remove a copy (rollback of a failed write, eviction to the archive); missing is fine."""
        self._call("delete", key, lambda: self._delete(key, locator))

    def list(self, namespace: Namespace) -> Iterator[str]:
        """Every digest held in ``namespace`` (for scrub); not every backend can list."""
        try:
            yield from self._list(namespace)
        except StorageError:
            raise
        except self.transient_errors as exc:
            raise BackendUnavailable(f"{self.name}: list {namespace.value}: {exc}") from exc
        except Exception as exc:  # e.g. a damaged database: a failing backend, never a crash
            raise StorageError(f"{self.name}: list {namespace.value}: {type(exc).__name__}: {exc}") from exc

    def health(self) -> Health:
        start = time.perf_counter()
        try:
            detail = self._health()
            ok = True
        except Exception as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        return Health(self.name, ok, (time.perf_counter() - start) * 1000, detail, self.durable)

    def close(self) -> None:  # noqa: B027 - a no-op default; drivers with connections override it
        """Release connections; the default has none."""

    # --- what drivers implement ----------------------------------------------------------

    @abstractmethod
    def _put(self, key: BlobKey, data: bytes, info: BlobInfo, replace: bool) -> str | None: ...

    @abstractmethod
    def _get(self, key: BlobKey, locator: str | None) -> bytes:
        """Return the bytes or raise BlobNotFound."""

    @abstractmethod
    def _has(self, key: BlobKey, locator: str | None) -> bool: ...

    def _delete(self, key: BlobKey, locator: str | None) -> None:
        raise StorageError(f"{self.name}: this backend cannot delete")

    def _list(self, namespace: Namespace) -> Iterator[str]:
        raise StorageError(f"{self.name}: this backend cannot list its objects")

    def _get_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | None]:
        """Raw bytes or None (missing) per key; override to batch."""
        out: dict[BlobKey, bytes | None] = {}
        for key in keys:
            try:
                out[key] = self._get(key, None)
            except BlobNotFound:
                out[key] = None
        return out

    def _health(self) -> str:
        """Raise if the backend cannot serve; return a short detail."""
        return "ok"

    # --- helpers ---------------------------------------------------------------------------

    def _limit(self, key: BlobKey) -> int:
        return self.media_max_bytes if key.namespace is Namespace.MEDIA else self.max_bytes

    def _check_size(self, key: BlobKey, size: int) -> None:
        if size > self._limit(key):
            raise StorageError(f"{self.name}: {key}: {size} bytes is over the limit of {self._limit(key)}")

    def _call(self, action: str, key: BlobKey, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StorageError:
            raise
        except self.transient_errors as exc:
            raise BackendUnavailable(f"{self.name}: {action} {key}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            raise StorageError(f"{self.name}: {action} {key}: {type(exc).__name__}: {exc}") from exc

    def _call_many(self, keys: Sequence[BlobKey]) -> dict[BlobKey, bytes | StorageError | None]:
        try:
            return dict(self._get_many(keys))
        except StorageError as exc:
            return dict.fromkeys(keys, exc)
        except self.transient_errors as exc:
            error = BackendUnavailable(f"{self.name}: get {len(keys)} blobs: {type(exc).__name__}: {exc}")
            return dict.fromkeys(keys, error)
        except Exception as exc:
            return dict.fromkeys(keys, StorageError(f"{self.name}: get {len(keys)} blobs: {type(exc).__name__}: {exc}"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
