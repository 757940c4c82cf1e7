"""guard: export approvals keep their ledger entry and revocation in columns

Revision ID: 0011_export_approvals
Revises: 0010_guard_budget
Create Date: 2026-12-01 23:30:00

Approvals given before this revision were not ledger entries: their new
columns stay empty (no entry, not revoked).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_export_approvals"
down_revision: str | None = "0010_guard_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("export_approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger_index", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("revoke_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("revoked_ledger_index", sa.BigInteger(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_export_approvals_revoked_by_staff"), "staff", ["revoked_by"], ["id"]
        )


def downgrade() -> None:
    # The revision before knows no revocation: a revoked approval stays closed as "used".
    approvals = sa.table(
        "export_approvals",
        sa.column("used_at", sa.DateTime(timezone=True)),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        sa.update(approvals)
        .where(approvals.c.revoked_at.is_not(None), approvals.c.used_at.is_(None))
        .values(used_at=approvals.c.revoked_at)
    )
    with op.batch_alter_table("export_approvals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_export_approvals_revoked_by_staff"), type_="foreignkey")
        batch_op.drop_column("revoked_ledger_index")
        batch_op.drop_column("revoke_reason")
        batch_op.drop_column("revoked_by")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("ledger_index")
