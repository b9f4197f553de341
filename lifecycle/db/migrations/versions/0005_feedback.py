"""feedback

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lifecycle.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", lifecycle.db.types.UTCDateTime(), nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index("ix_feedback_model_request", "feedback", ["model_name", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_model_request", table_name="feedback")
    op.drop_table("feedback")
