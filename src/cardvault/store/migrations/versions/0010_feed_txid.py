"""changes and events: the writer's transaction id, so feeds read in commit order

Readers of "what is new since X" (the change feed, ``GET /events``) follow
cardvault.store.feeds: on PostgreSQL by the writer's transaction id, filled by a
server default, below the oldest running transaction. Rows written before this
revision get 0: they are all committed, and keep the order they had (by id).
SQLite commits in id order: the column stays empty there, and so do the indexes
(partial, on rows that have a txid).

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
TXID_SET = sa.text("txid IS NOT NULL")
INDEXES = {
    "changes": ("ix_changes_txid", ["txid", "id"]),
    "events": ("ix_events_vault_txid", ["vault_id", "txid", "seq"]),
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, (index, columns) in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            if postgresql:
                # A constant default fills existing rows without rewriting the table;
                # new rows then get their writer's transaction id.
                batch_op.add_column(sa.Column("txid", sa.BigInteger(), server_default="0"))
                batch_op.alter_column("txid", server_default=sa.text(TXID_DEFAULT))
            else:
                batch_op.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
            batch_op.create_index(
                index, columns, unique=False, sqlite_where=TXID_SET, postgresql_where=TXID_SET
            )


def downgrade() -> None:
    for table, (index, _columns) in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(index, sqlite_where=TXID_SET, postgresql_where=TXID_SET)
            batch_op.drop_column("txid")
