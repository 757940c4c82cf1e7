"""detect: alerts, their evidence and status, allow-list entries, detection state

Revision ID: 0009_detect
Revises: 0008_imports
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op  # noqa: F401 - used once the revision is filled in

revision: str = "0009_detect"
down_revision: str | None = "0008_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    pass  # RESERVED: filled in by the detect work


def downgrade() -> None:
    pass  # RESERVED: filled in by the detect work
