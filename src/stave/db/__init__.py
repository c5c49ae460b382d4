"""The SQL database every part keeps its index in: SQLite by default, PostgreSQL at scale.

Same code on both (SQLAlchemy Core), schema changes as Alembic migrations applied on open.
SQLite runs in WAL mode with ``synchronous=FULL``: an acknowledged write survives power loss.
"""

from stave.db.database import Database, driver_sql, in_list, open_database
from stave.db.schema import metadata

__all__ = ["Database", "driver_sql", "in_list", "metadata", "open_database"]
