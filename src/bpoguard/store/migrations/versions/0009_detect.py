"""detect: alerts, their evidence and status, risk scores, detection state

Revision ID: 0009_detect
Revises: 0008_imports
Create Date: 2026-12-01 20:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_detect"
down_revision: str | None = "0008_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "detect_alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("firings", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        sa.Column("status_by", sa.String(length=64), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_detect_alerts")),
    )
    with op.batch_alter_table("detect_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_detect_alerts_person_detector", ["person", "detector", "window_end"], unique=False
        )
    op.create_table(
        "detect_evidence",
        sa.Column("alert_id", _ID, nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ledger_index", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["detect_alerts.id"],
            name=op.f("fk_detect_evidence_alert_id_detect_alerts"),
        ),
        sa.PrimaryKeyConstraint("alert_id", "event_id", name=op.f("pk_detect_evidence")),
    )
    op.create_table(
        "detect_risk",
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person", name=op.f("pk_detect_risk")),
    )
    op.create_table(
        "detect_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_detect_state")),
    )


def downgrade() -> None:
    op.drop_table("detect_state")
    op.drop_table("detect_risk")
    op.drop_table("detect_evidence")
    with op.batch_alter_table("detect_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_detect_alerts_person_detector")
    op.drop_table("detect_alerts")
