"""canaries: canary customers, everyone they reached, and reports that tie back to them

Revision ID: 0005_canaries
Revises: 0003_vault
Create Date: 2026-11-23 14:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_canaries"
down_revision: str | None = "0003_vault"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "canaries",
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("planted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planted_by", sa.String(length=64), nullable=False),
        sa.Column("shown_to", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_canaries_client_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_canaries_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_canaries")),
    )
    op.create_table(
        "canary_exposures",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=True),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["canaries.customer_id"],
            name=op.f("fk_canary_exposures_customer_id_canaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_exposures")),
    )
    with op.batch_alter_table("canary_exposures", schema=None) as batch_op:
        batch_op.create_index("ix_canary_exposures_customer", ["customer_id", "at"], unique=False)
    op.create_table(
        "canary_reports",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("customer_id", _ID, nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("reported_on", sa.Date(), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["canaries.customer_id"],
            name=op.f("fk_canary_reports_customer_id_canaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canary_reports")),
    )


def downgrade() -> None:
    op.drop_table("canary_reports")
    with op.batch_alter_table("canary_exposures", schema=None) as batch_op:
        batch_op.drop_index("ix_canary_exposures_customer")
    op.drop_table("canary_exposures")
    op.drop_table("canaries")
