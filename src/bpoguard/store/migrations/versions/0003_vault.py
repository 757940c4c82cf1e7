"""vault: wrapped client keys, encrypted customer field values, blind indexes

Revision ID: 0003_vault
Revises: 0003_guard_usage
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_vault"
# After the guard's budgets (0003_guard_usage, itself on 0002_ledger): one line
# of revisions, so the store has a single head.
down_revision: str | None = "0003_guard_usage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vault_keys",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_vault_keys_client_id_organisations")
        ),
        sa.PrimaryKeyConstraint("client_id", "version", "purpose", name=op.f("pk_vault_keys")),
    )
    op.create_table(
        "vault_values",
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_vault_values_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", "field", name=op.f("pk_vault_values")),
    )
    op.create_table(
        "vault_index",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=16), nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_vault_index_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint(
            "client_id", "field", "digest", "customer_id", name=op.f("pk_vault_index")
        ),
    )
    with op.batch_alter_table("vault_index", schema=None) as batch_op:
        batch_op.create_index("ix_vault_index_customer", ["customer_id", "field"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vault_index", schema=None) as batch_op:
        batch_op.drop_index("ix_vault_index_customer")
    op.drop_table("vault_index")
    op.drop_table("vault_values")
    op.drop_table("vault_keys")
