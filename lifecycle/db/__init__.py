"""Our SQL database (SQLite embedded, PostgreSQL in production): schema, engine, migrations, stores."""

from __future__ import annotations

from lifecycle.db.engine import create_db_engine, session_factory
from lifecycle.db.migrate import upgrade_to_head

__all__ = ["create_db_engine", "session_factory", "upgrade_to_head"]
