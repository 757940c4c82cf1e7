"""web: staff API tokens (hashes only) and device credentials

Revision ID: 0007_web
Revises: 0006_guard_access
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_web"
down_revision: str | None = "0006_guard_access"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_tokens",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_web_tokens_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_tokens")),
    )
    with op.batch_alter_table("web_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_web_tokens_staff", ["staff_id"], unique=False)
    op.create_table(
        "web_device_credentials",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_web_device_credentials_device_id_devices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_device_credentials")),
    )
    with op.batch_alter_table("web_device_credentials", schema=None) as batch_op:
        batch_op.create_index("ix_web_device_credentials_device", ["device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("web_device_credentials", schema=None) as batch_op:
        batch_op.drop_index("ix_web_device_credentials_device")
    op.drop_table("web_device_credentials")
    with op.batch_alter_table("web_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_web_tokens_staff")
    op.drop_table("web_tokens")
