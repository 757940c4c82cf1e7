"""guard: budgets taken atomically (reserved for the guard-speed work)

Revision ID: 0010_guard_budget
Revises: 0009_detect
Create Date: 2026-12-01 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0010_guard_budget"
down_revision: str | None = "0009_detect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet."""


def downgrade() -> None:
    """Nothing yet."""
