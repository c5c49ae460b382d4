"""Replicated, self-healing storage of events and media on real backends.

One small interface (:class:`BlobStore`), one driver per backend, opened from URLs
(:func:`open_store`), and :class:`ReplicatedStore`, which writes to every durable backend,
acknowledges at quorum, verifies every read and repairs what is missing or corrupt.
"""

from stave.store.base import BlobInfo, BlobKey, BlobStore, Health, Namespace, verify_blob
from stave.store.index import StoreIndex
from stave.store.replicated import PutResult, QuorumError, ReplicatedStore, ScrubReport, StoreHealth
from stave.store.urls import open_store

__all__ = [
    "BlobInfo",
    "BlobKey",
    "BlobStore",
    "Health",
    "Namespace",
    "PutResult",
    "QuorumError",
    "ReplicatedStore",
    "ScrubReport",
    "StoreHealth",
    "StoreIndex",
    "open_store",
    "verify_blob",
]
