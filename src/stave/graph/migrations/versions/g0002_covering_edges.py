"""Covering indexes on the graph's edges: the collaborators walk reads (src, rel, dst) only.

Revision ID: g0002
Revises: g0001
Create Date: 2026-12-06
"""

from alembic import op

revision = "g0002"
down_revision = "g0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The other end of an edge in the index itself: a hop never touches the table.
    op.drop_index("graph_edges_src", table_name="graph_edges")
    op.drop_index("graph_edges_dst", table_name="graph_edges")
    op.create_index("graph_edges_src", "graph_edges", ["src", "rel", "dst"], unique=False)
    op.create_index("graph_edges_dst", "graph_edges", ["dst", "rel", "src"], unique=False)


def downgrade() -> None:
    op.drop_index("graph_edges_src", table_name="graph_edges")
    op.drop_index("graph_edges_dst", table_name="graph_edges")
    op.create_index("graph_edges_src", "graph_edges", ["src", "rel"], unique=False)
    op.create_index("graph_edges_dst", "graph_edges", ["dst", "rel"], unique=False)
