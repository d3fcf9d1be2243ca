"""bulk rows: a worker's claim on the rows it prepares

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardvault.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "claimed_until", cardvault.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("bulk_rows", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
