"""The web layer's tables: API tokens and device credentials, stored only as hashes.

Owned by :mod:`bpoguard.web.credentials`; nobody else reads or writes them.
A secret is shown once, when it is minted; the store keeps its SHA-256
digest, which is enough to recognise it and useless to present.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, LargeBinary, String, Table

from bpoguard.store._base import Base

# One row per token. kind 'staff' names a person (staff_id); kind 'system' names
# an integration (the telephony or CRM system) that opens and closes interactions.
web_tokens = Table(
    "web_tokens",
    Base.metadata,
    Column("id", String(16), primary_key=True),  # public part of the token, not secret
    Column("kind", String(8), nullable=False),
    Column("staff_id", String(32), ForeignKey("staff.id"), nullable=True),
    Column("name", String(64), nullable=False),  # the system's name, or the staff id
    Column("digest", LargeBinary(32), nullable=False),  # SHA-256 of the whole token
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_web_tokens_staff", "staff_id"),
)

# One row per credential issued to a device; enrolling again revokes the old one.
web_device_credentials = Table(
    "web_device_credentials",
    Base.metadata,
    Column("id", String(16), primary_key=True),
    Column("device_id", String(32), ForeignKey("devices.id"), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_web_device_credentials_device", "device_id"),
)
