"""guard: budgets taken atomically (reserved for the guard-speed work)

The guard now keeps its counts of distinct customers a shift and an hour in
``guard_counters`` (scopes ``shift`` and ``hour``, beside ``reveals``) and
moves them with a conditional update. Existing budgets carry over: each
count starts at the number of customers already in ``guard_touched`` for
that person, scope and period. No table changes shape.

Revision ID: 0010_guard_budget
Revises: 0009_detect
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_guard_budget"
down_revision: str | None = "0009_detect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Start each distinct-customer count at what guard_touched already holds."""
    op.execute(
        "INSERT INTO guard_counters (staff_id, scope, period, count) "
        "SELECT staff_id, scope, period, COUNT(*) FROM guard_touched "
        "WHERE scope IN ('shift', 'hour') GROUP BY staff_id, scope, period"
    )


def downgrade() -> None:
    """Drop the distinct-customer counts; the revision before counts guard_touched itself."""
    op.execute("DELETE FROM guard_counters WHERE scope IN ('shift', 'hour')")
