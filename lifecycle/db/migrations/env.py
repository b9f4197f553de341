"""Alembic environment: the engine is handed in by ``lifecycle.db.migrate`` through config attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from lifecycle.db.schema import Base

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through lifecycle.db.migrate.upgrade_to_head(engine)")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
