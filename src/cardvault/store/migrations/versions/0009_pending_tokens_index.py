"""network tokens: a partial index of the PENDING ones, for the settling worker

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'PENDING'")


def upgrade() -> None:
    with op.batch_alter_table("network_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_network_tokens_pending",
            ["updated_at"],
            unique=False,
            sqlite_where=PENDING,
            postgresql_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("network_tokens", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_network_tokens_pending", sqlite_where=PENDING, postgresql_where=PENDING
        )
