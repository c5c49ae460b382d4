"""The music graph: nodes, names (with a search index), aliases, edges, memberships, touches, governance.

Revision ID: g0001
Revises:
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "graph_alias",
        sa.Column("node_id", sa.String(length=256), nullable=False),
        sa.Column("target_id", sa.String(length=256), nullable=False),
        sa.Column("merge_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("node_id"),
    )
    op.create_index("graph_alias_target", "graph_alias", ["target_id"], unique=False)
    op.create_table(
        "graph_claims",
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.String(length=256), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("amended_at", sa.BigInteger(), nullable=True),
        sa.Column("destructive", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("claim_id"),
    )
    op.create_index("graph_claims_status", "graph_claims", ["status", "seq"], unique=False)
    op.create_index("graph_claims_subject", "graph_claims", ["subject_id"], unique=False)
    op.create_table(
        "graph_comments",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("claim_id", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=256), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("graph_comments_claim", "graph_comments", ["claim_id", "seq"], unique=False)
    op.create_table(
        "graph_cursor",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("log_time", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "graph_edges",
        sa.Column("edge_id", sa.String(length=40), nullable=False),
        sa.Column("src", sa.String(length=256), nullable=False),
        sa.Column("rel", sa.String(length=16), nullable=False),
        sa.Column("dst", sa.String(length=256), nullable=False),
        sa.Column("role_id", sa.String(length=256), nullable=True),
        sa.Column("group_id", sa.String(length=256), nullable=True),
        sa.Column("side", sa.Integer(), nullable=True),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pos", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("edge_id"),
    )
    op.create_index("graph_edges_dst", "graph_edges", ["dst", "rel"], unique=False)
    op.create_index("graph_edges_src", "graph_edges", ["src", "rel"], unique=False)
    op.create_table(
        "graph_finalizations",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("finalizer", sa.String(length=128), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("yes", sa.Integer(), nullable=False),
        sa.Column("no", sa.Integer(), nullable=False),
        sa.Column("abstain", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("graph_finalizations_claim", "graph_finalizations", ["claim_id"], unique=False)
    op.create_table(
        "graph_likes",
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("target", "author"),
    )
    op.create_table(
        "graph_memberships",
        sa.Column("membership_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.String(length=256), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("since", sa.String(length=10), nullable=True),
        sa.Column("until", sa.String(length=10), nullable=True),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("membership_id"),
    )
    op.create_index("graph_memberships_group", "graph_memberships", ["group_id"], unique=False)
    op.create_index("graph_memberships_person", "graph_memberships", ["person_id"], unique=False)
    op.create_table(
        "graph_names",
        sa.Column("name_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=256), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("folded", sa.Text(), nullable=False),
        sa.Column("is_primary", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name_id"),
        sa.UniqueConstraint("node_id", "name", name="graph_names_node_name"),
    )
    op.create_table(
        "graph_nodes",
        sa.Column("id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("attrs", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("graph_nodes_kind", "graph_nodes", ["kind"], unique=False)
    op.create_table(
        "graph_rejections",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", "n"),
    )
    op.create_index("graph_rejections_event", "graph_rejections", ["event_id"], unique=False)
    op.create_table(
        "graph_reward_claims",
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("claim_id", "recipient"),
    )
    op.create_table(
        "graph_rewards",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("claim_ids", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", "recipient"),
    )
    op.create_index("graph_rewards_recipient", "graph_rewards", ["recipient", "unit"], unique=False)
    op.create_table(
        "graph_touches",
        sa.Column("node_id", sa.String(length=256), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("how", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "seq", "how"),
    )
    op.create_table(
        "graph_votes",
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("voter", sa.String(length=128), nullable=False),
        sa.Column("vote", sa.String(length=8), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("claim_id", "voter"),
    )
    if op.get_bind().dialect.name == "sqlite":
        # External-content FTS5 over the folded names, kept in step by triggers.
        op.execute(
            "CREATE VIRTUAL TABLE graph_names_fts USING fts5(folded, content='graph_names', "
            "content_rowid='name_id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER graph_names_ai AFTER INSERT ON graph_names BEGIN "
            "INSERT INTO graph_names_fts(rowid, folded) VALUES (new.name_id, new.folded); END"
        )
        op.execute(
            "CREATE TRIGGER graph_names_ad AFTER DELETE ON graph_names BEGIN "
            "INSERT INTO graph_names_fts(graph_names_fts, rowid, folded) "
            "VALUES ('delete', old.name_id, old.folded); END"
        )
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX graph_names_trgm ON graph_names USING gin (folded gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE graph_names_fts")
    for table in [
        "graph_alias",
        "graph_claims",
        "graph_comments",
        "graph_cursor",
        "graph_edges",
        "graph_finalizations",
        "graph_likes",
        "graph_memberships",
        "graph_names",
        "graph_nodes",
        "graph_rejections",
        "graph_reward_claims",
        "graph_rewards",
        "graph_touches",
        "graph_votes",
    ]:
        op.drop_table(table)
