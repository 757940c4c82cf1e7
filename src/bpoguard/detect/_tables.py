"""The detect module's tables: alerts, their evidence, risk scores, detection state.

Owned here and written only through :mod:`bpoguard.detect.alerts` and
:mod:`bpoguard.detect.pipeline`; migration 0009_detect creates them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from bpoguard.store._base import Base

_ID = BigInteger().with_variant(Integer, "sqlite")

# One row per person, detector and episode (firings no more than a few days apart).
detect_alerts = Table(
    "detect_alerts",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("person", String(200), nullable=False),
    Column("detector", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("score", Float, nullable=False),
    Column("summary", String(500), nullable=False),
    Column("explanation", Text, nullable=False),
    Column("firings", Integer, nullable=False),  # person-days (or decisions) behind it
    Column("first_seen", DateTime(timezone=True), nullable=False),  # when bpoguard raised it
    # When the evidence first sufficed, in the data's time: the first decision for an
    # instant rule, the end of the first day for a daily one.
    Column("detected_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # new, triaged, dismissed, escalated
    Column("status_reason", String(500), nullable=True),
    Column("status_by", String(64), nullable=True),
    Column("status_at", DateTime(timezone=True), nullable=True),
    Index("ix_detect_alerts_person_detector", "person", "detector", "window_end"),
)

# The events behind an alert: lake event ids, with the ledger index where there is one.
detect_evidence = Table(
    "detect_evidence",
    Base.metadata,
    Column("alert_id", _ID, ForeignKey("detect_alerts.id"), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("ledger_index", BigInteger, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

detect_risk = Table(
    "detect_risk",
    Base.metadata,
    Column("person", String(200), primary_key=True),
    Column("score", Float, nullable=False),
    Column("document", JSON, nullable=False),  # reasons and contributions
    Column("computed_at", DateTime(timezone=True), nullable=False),
)

# The watermark: which lake files detection has already seen (key "lake").
detect_state = Table(
    "detect_state",
    Base.metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
