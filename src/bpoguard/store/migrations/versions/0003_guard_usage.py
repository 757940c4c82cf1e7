"""guard budgets: customers touched per shift and hour, reveal counters, verification attempts

Revision ID: 0003_guard_usage
Revises: 0002_ledger
Create Date: 2026-11-22 19:37:51.049251
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_guard_usage"
down_revision: str | None = "0002_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guard_counters",
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("period", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "scope", "period", name=op.f("pk_guard_counters")),
    )
    op.create_table(
        "guard_touched",
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("period", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.PrimaryKeyConstraint(
            "staff_id", "scope", "period", "customer_id", name=op.f("pk_guard_touched")
        ),
    )
    op.create_table(
        "guard_verify_attempts",
        sa.Column(
            "interaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("interaction_id", name=op.f("pk_guard_verify_attempts")),
    )


def downgrade() -> None:
    op.drop_table("guard_verify_attempts")
    op.drop_table("guard_touched")
    op.drop_table("guard_counters")
