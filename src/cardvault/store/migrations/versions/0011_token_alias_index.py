"""network tokens: one index for the lookup by pan_alias within a vault

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:40:00.000000

``GET /network-tokens/{pan_alias}`` filters on the vault and the alias. With an index
on each, PostgreSQL's planner, its statistics not yet updated after a burst of
enrolments, combined both and read the whole vault's entries of the first on every
call. One index on (pan_alias, vault_id) answers it alone, and lookups by alias only
use its first column.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("network_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_network_tokens_alias_vault", ["pan_alias", "vault_id"], unique=False
        )
        batch_op.drop_index("ix_network_tokens_pan_alias")


def downgrade() -> None:
    with op.batch_alter_table("network_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_network_tokens_pan_alias", ["pan_alias"], unique=False)
        batch_op.drop_index("ix_network_tokens_alias_vault")
