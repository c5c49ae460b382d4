"""The store's index: blobs and their copies.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("namespace", sa.String(16), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("event_type", sa.String(32)),
        sa.Column("author", sa.String(128)),
        sa.Column("created_at", sa.BigInteger),
        sa.Column("stored_at", sa.BigInteger, nullable=False),
    )
    op.create_index("blobs_created_at", "blobs", ["namespace", "created_at"])
    op.create_table(
        "blob_copies",
        sa.Column("namespace", sa.String(16), primary_key=True),
        sa.Column("digest", sa.String(64), primary_key=True),
        sa.Column("backend", sa.String(256), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("locator", sa.String(512)),
        sa.Column("detail", sa.Text),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_index("blob_copies_state", "blob_copies", ["state", "backend"])


def downgrade() -> None:
    op.drop_table("blob_copies")
    op.drop_table("blobs")
