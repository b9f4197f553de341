"""retrain jobs

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import lifecycle.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC = lifecycle.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=256), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("trigger_ref", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTC(), nullable=False),
        sa.Column("finished_at", UTC(), nullable=True),
        sa.Column("champion_version", sa.String(length=32), nullable=True),
        sa.Column("teacher_version", sa.String(length=32), nullable=True),
        sa.Column("challenger_version", sa.String(length=32), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_jobs")),
    )
    op.create_index("ix_retrain_jobs_model_started", "retrain_jobs", ["model_name", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_retrain_jobs_model_started", table_name="retrain_jobs")
    op.drop_table("retrain_jobs")
