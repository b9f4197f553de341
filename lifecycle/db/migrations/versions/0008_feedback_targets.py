"""feedback for every task: a target (regression values, detection boxes) beside the class index

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.add_column(sa.Column("target", sa.JSON(), nullable=True))
        batch.alter_column("label", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("label", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("target")
