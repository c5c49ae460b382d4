"""Alembic environment of the graph: its own version table, so it can share a database with the log."""

from __future__ import annotations

from alembic import context

from stave.graph.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, version_table="graph_alembic_version"
)
with context.begin_transaction():
    context.run_migrations()
