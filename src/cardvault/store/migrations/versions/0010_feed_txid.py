"""changes and events: the writer's transaction id, so feeds read in commit order

Readers of "what is new since X" (the change feed, ``GET /events``) follow
cardvault.store.feeds: on PostgreSQL by the writer's transaction id, filled by a
server default, below the oldest running transaction. Rows written before this
revision get 0: they are all committed, and stay in the order they had (by id).
SQLite commits in id order: the column stays empty there and needs no index.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TXID_DEFAULT = "pg_current_xact_id()::text::bigint"  # as cardvault.store.feeds
INDEXES = {
    "changes": ("ix_changes_txid", ["txid", "id"]),
    "events": ("ix_events_vault_txid", ["vault_id", "txid", "seq"]),
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (index, columns) in INDEXES.items():
        if not postgresql:
            with op.batch_alter_table(table, schema=None) as batch_op:
                batch_op.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
            continue
        # A constant default fills existing rows without rewriting the table; new rows
        # then get their writer's transaction id.
        op.add_column(table, sa.Column("txid", sa.BigInteger(), server_default="0", nullable=True))
        op.alter_column(table, "txid", server_default=sa.text(TXID_DEFAULT))
        op.create_index(index, table, columns, unique=False)


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (index, _columns) in INDEXES.items():
        if postgresql:
            op.drop_index(index, table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("txid")
