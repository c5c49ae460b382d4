"""Tables, as SQLAlchemy Core metadata. Changes need a migration in ``migrations/versions``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text

__all__ = [
    "anchors",
    "blob_copies",
    "blobs",
    "label_configs",
    "log_checkpoints",
    "log_entries",
    "log_nodes",
    "log_state",
    "metadata",
    "relays",
]

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

# --- the log ---------------------------------------------------------------------------------

# Every sequenced event, once: ``seq`` is its leaf index in the Merkle tree.
log_entries = Table(
    "log_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(32)),
    Column("author", String(128)),
    Column("created_at", BigInteger),
    Column("sequenced_at", BigInteger, nullable=False),  # Unix milliseconds
    Index("log_entries_type", "event_type", "seq"),
    Index("log_entries_author", "author", "seq"),
)

# Hashes of the perfect subtrees of the tree: node (level, index) covers leaves
# [index·2^level, (index+1)·2^level) and is keyed by level·2^48 + index, one integer, so a batch
# of nodes is one primary-key IN query on both databases. Appends add O(1) amortised rows,
# proofs read O(log n).
log_nodes = Table(
    "log_nodes",
    metadata,
    Column("node", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# One row: the integrated tree's size and root (the sequencer's lock target).
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Every checkpoint published: the signed note text is kept verbatim.
log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # Unix milliseconds
)

# Anchors of checkpoints on ledgers; ``receipt`` is the JSON receipt, upgraded in place.
anchors = Table(
    "anchors",
    metadata,
    Column("ledger", String(512), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),  # pending | confirmed | failed
    Column("receipt", Text),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("anchors_state", "state"),
)

# --- administration (seed 004) ----------------------------------------------------------------

# Label configurations for capture apps, versioned: an update adds a version, apps fetch the latest.
label_configs = Table(
    "label_configs",
    metadata,
    Column("label", String(128), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("config", Text, nullable=False),  # JSON
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(64), nullable=False),  # the admin credential's id
)

# Relays known to this server: registered, then approved (their relay credentials are accepted
# when ``auth.relays_only`` is set), or revoked.
relays = Table(
    "relays",
    metadata,
    Column("public_key", String(64), primary_key=True),  # base64url Ed25519 key of the relay
    Column("name", String(128), nullable=False),
    Column("url", String(512)),
    Column("state", String(16), nullable=False),  # registered | approved | revoked
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
