"""alias history and named locks

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lifecycle.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("alias", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("set_at", lifecycle.db.types.UTCDateTime(), nullable=False),
        sa.Column("set_by", sa.String(length=256), nullable=False),
        sa.Column("cleared_at", lifecycle.db.types.UTCDateTime(), nullable=True),
        sa.Column("cleared_by", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alias_history")),
    )
    op.create_index("ix_alias_history_model_alias", "alias_history", ["model_name", "alias", "cleared_at"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", lifecycle.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", lifecycle.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_locks")),
    )


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_index("ix_alias_history_model_alias", table_name="alias_history")
    op.drop_table("alias_history")
