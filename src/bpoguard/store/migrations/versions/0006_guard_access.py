"""guard_access: search results, export approvals, per-contract policy texts

Revision ID: 0006_guard_access
Revises: 0005_canaries
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op  # noqa: F401 - used once the revision is filled in

revision: str = "0006_guard_access"
down_revision: str | None = "0005_canaries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass  # RESERVED: filled in by the guard work


def downgrade() -> None:
    pass  # RESERVED: filled in by the guard work
