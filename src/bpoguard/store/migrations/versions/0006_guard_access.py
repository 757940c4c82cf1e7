"""guard_access: search results, export approvals, per-contract policy texts

Revision ID: 0006_guard_access
Revises: 0005_canaries
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_guard_access"
down_revision: str | None = "0005_canaries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "guard_disclosures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("verb", sa.String(length=16), nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_guard_disclosures_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guard_disclosures")),
    )
    with op.batch_alter_table("guard_disclosures", schema=None) as batch_op:
        batch_op.create_index("ix_guard_disclosures_customer", ["customer_id", "at"], unique=False)
        batch_op.create_index("ix_guard_disclosures_staff", ["staff_id", "at"], unique=False)
    op.create_table(
        "export_approvals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("approved_by", sa.String(length=32), nullable=False),
        sa.Column("customer_ids", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["organisations.id"],
            name=op.f("fk_export_approvals_client_id_organisations"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_export_approvals_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by"], ["staff.id"], name=op.f("fk_export_approvals_approved_by_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_approvals")),
    )
    op.create_table(
        "guard_policies",
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_guard_policies_contract_id_contracts")
        ),
        sa.PrimaryKeyConstraint("contract_id", name=op.f("pk_guard_policies")),
    )


def downgrade() -> None:
    op.drop_table("guard_policies")
    op.drop_table("export_approvals")
    with op.batch_alter_table("guard_disclosures", schema=None) as batch_op:
        batch_op.drop_index("ix_guard_disclosures_staff")
        batch_op.drop_index("ix_guard_disclosures_customer")
    op.drop_table("guard_disclosures")
