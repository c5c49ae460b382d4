"""Tables, as SQLAlchemy Core metadata. Changes need a migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table, Text

__all__ = ["blob_copies", "blobs", "metadata"]

metadata = MetaData()

# One row per blob stave has accepted (or is accepting). ``state`` is ``pending`` while a write
# is in flight and ``stored`` once ``min_redundancy`` durable copies are confirmed: only stored
# blobs exist for readers.
blobs = Table(
    "blobs",
    metadata,
    Column("namespace", String(16), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("event_type", String(32)),
    Column("author", String(128)),
    Column("created_at", BigInteger),  # the event's own time, Unix seconds
    Column("stored_at", BigInteger, nullable=False),  # when stave stored it, Unix milliseconds
    Index("blobs_created_at", "namespace", "created_at"),
)

# One row per blob and backend: where copies are and what is known of each. ``locator`` is
# what the backend needs to find the copy beyond its address (an IPFS CID, a CAR file slice).
blob_copies = Table(
    "blob_copies",
    metadata,
    Column("namespace", String(16), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("backend", String(256), primary_key=True),
    Column("state", String(16), nullable=False),  # ok | failed | missing | corrupt
    Column("locator", String(512)),
    Column("detail", Text),
    Column("updated_at", BigInteger, nullable=False),
    Index("blob_copies_state", "state", "backend"),
)
