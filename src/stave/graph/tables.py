"""The music graph's tables (SQLAlchemy Core). Changes need a migration in ``migrations/versions``.

Every table is prefixed ``graph_`` so the projection can share a PostgreSQL database with the
log. Booleans are integers and structured values canonical JSON text, so the digest reads the
same values on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

__all__ = [
    "DIGEST_TABLES",
    "alias",
    "claims",
    "comments",
    "cursor",
    "edges",
    "finalizations",
    "likes",
    "memberships",
    "metadata",
    "names",
    "nodes",
    "rejections",
    "reward_claims",
    "rewards",
    "touches",
    "votes",
]

metadata = MetaData()
_ID = 256  # node ids are opaque strings of 1–256 characters
_EVENT = 64

# Where a projection is in the log: the last applied sequence number and the log time there.
cursor = Table(
    "graph_cursor",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("log_time", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),  # Unix ms, for operators; not in the digest
)

# Every node ever created; ``attrs`` is canonical JSON of its kind's attributes.
nodes = Table(
    "graph_nodes",
    metadata,
    Column("id", String(_ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("name", Text),
    Column("attrs", Text, nullable=False),
    Column("created_by", String(_EVENT), nullable=False),
    Index("graph_nodes_kind", "kind"),
)

# Primary and alternative names with their folded forms (the search index reads these).
names = Table(
    "graph_names",
    metadata,
    Column("name_id", Integer, primary_key=True, autoincrement=True),  # the FTS5 rowid on SQLite
    Column("node_id", String(_ID), nullable=False),
    Column("name", Text, nullable=False),
    Column("folded", Text, nullable=False),
    Column("is_primary", Integer, nullable=False),
    UniqueConstraint("node_id", "name", name="graph_names_node_name"),
)

# A merged node resolves to ``target_id`` while the merge stands; ids themselves never change.
alias = Table(
    "graph_alias",
    metadata,
    Column("node_id", String(_ID), primary_key=True),
    Column("target_id", String(_ID), nullable=False),
    Column("merge_id", String(_EVENT), nullable=False),
    Index("graph_alias_target", "target_id"),
)

# Relations, stored with the ids the events gave: credits (track → person, role, via group),
# tracklist positions (release → track), labels, parents, cities, covers, samples, reissues.
edges = Table(
    "graph_edges",
    metadata,
    Column("edge_id", String(40), primary_key=True),
    Column("src", String(_ID), nullable=False),
    Column("rel", String(16), nullable=False),
    Column("dst", String(_ID), nullable=False),
    Column("role_id", String(_ID)),
    Column("group_id", String(_ID)),
    Column("side", Integer),
    Column("number", Integer),
    Column("event_id", String(_EVENT), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("pos", Integer, nullable=False),  # order among the edges the entry at ``seq`` made (document order)
    Index("graph_edges_src", "src", "rel", "dst"),  # covering: a hop reads the index alone
    Index("graph_edges_dst", "dst", "rel", "src"),
)

memberships = Table(
    "graph_memberships",
    metadata,
    Column("membership_id", String(40), primary_key=True),
    Column("group_id", String(_ID), nullable=False),
    Column("person_id", String(_ID), nullable=False),
    Column("roles", Text, nullable=False),
    Column("since", String(10)),
    Column("until", String(10)),
    Column("event_id", String(_EVENT), nullable=False),
    Column("ended_by", String(_EVENT)),
    Column("seq", BigInteger, nullable=False),
    Index("graph_memberships_group", "group_id"),
    Index("graph_memberships_person", "person_id"),
)

# The audit trail: every event that touched a node, in log order.
touches = Table(
    "graph_touches",
    metadata,
    Column("node_id", String(_ID), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("how", String(32), primary_key=True),
    Column("event_id", String(_EVENT), nullable=False),
    Column("event_type", String(32), nullable=False),
)

# --- governance ---------------------------------------------------------------------------

claims = Table(
    "graph_claims",
    metadata,
    Column("claim_id", String(_EVENT), primary_key=True),
    Column("kind", String(8), nullable=False),  # claim | merge | split
    Column("author", String(128), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject_id", String(_ID), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON: changes, sources, note or the merge/split fields
    Column("opened_at", BigInteger, nullable=False),
    Column("amended_at", BigInteger),
    Column("destructive", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("closed_by", String(_EVENT)),  # the FINALIZE or DELETE_CLAIM event
    Column("closed_at", BigInteger),
    Index("graph_claims_status", "status", "seq"),
    Index("graph_claims_subject", "subject_id"),
)

votes = Table(
    "graph_votes",
    metadata,
    Column("claim_id", String(_EVENT), primary_key=True),
    Column("voter", String(128), primary_key=True),
    Column("vote", String(8), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("event_id", String(_EVENT), nullable=False),
    Column("seq", BigInteger, nullable=False),
)

likes = Table(
    "graph_likes",
    metadata,
    Column("target", String(_EVENT), primary_key=True),
    Column("author", String(128), primary_key=True),
    Column("event_id", String(_EVENT), nullable=False),
    Column("seq", BigInteger, nullable=False),
)

comments = Table(
    "graph_comments",
    metadata,
    Column("event_id", String(_EVENT), primary_key=True),
    Column("claim_id", String(_EVENT)),
    Column("subject_id", String(_ID)),
    Column("parent_id", String(_EVENT)),
    Column("author", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("graph_comments_claim", "claim_id", "seq"),
)

finalizations = Table(
    "graph_finalizations",
    metadata,
    Column("event_id", String(_EVENT), primary_key=True),
    Column("claim_id", String(_EVENT), nullable=False),
    Column("finalizer", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("yes", Integer, nullable=False),
    Column("no", Integer, nullable=False),
    Column("abstain", Integer, nullable=False),
    Column("valid", Integer, nullable=False),
    Column("rule", String(64)),
    Column("detail", Text),
    Column("seq", BigInteger, nullable=False),
    Index("graph_finalizations_claim", "claim_id"),
)

rewards = Table(
    "graph_rewards",
    metadata,
    Column("event_id", String(_EVENT), primary_key=True),
    Column("recipient", String(128), primary_key=True),
    Column("unit", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("claim_ids", Text, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Index("graph_rewards_recipient", "recipient", "unit"),
)

# Which claims each valid distribution paid whom for (a claim pays a recipient once).
reward_claims = Table(
    "graph_reward_claims",
    metadata,
    Column("claim_id", String(_EVENT), primary_key=True),
    Column("recipient", String(128), primary_key=True),
    Column("event_id", String(_EVENT), nullable=False),
)

# Every event (or part of one) the projection refused, with the rule and why: never dropped silently.
rejections = Table(
    "graph_rejections",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("n", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(_EVENT), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Index("graph_rejections_event", "event_id"),
)

# In the digest, in this order, each read in the order of these key columns.
DIGEST_TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (cursor, ("name",)),
    (nodes, ("id",)),
    (names, ("node_id", "name")),
    (alias, ("node_id",)),
    (edges, ("edge_id",)),
    (memberships, ("membership_id",)),
    (touches, ("node_id", "seq", "how")),
    (claims, ("claim_id",)),
    (votes, ("claim_id", "voter")),
    (likes, ("target", "author")),
    (comments, ("event_id",)),
    (finalizations, ("event_id",)),
    (rewards, ("event_id", "recipient")),
    (reward_claims, ("claim_id", "recipient")),
    (rejections, ("seq", "n")),
)
