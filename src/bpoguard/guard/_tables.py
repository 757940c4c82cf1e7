"""The vault's tables: wrapped client keys, encrypted field values, blind indexes.

Owned by :mod:`bpoguard.guard.vault`; nobody else reads or writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from bpoguard.store._base import Base

_ID = BigInteger().with_variant(Integer, "sqlite")

# One row per client, key version and purpose ('data' encrypts values, 'index'
# keys the blind indexes): the key itself only ever stored wrapped by a KEK.
vault_keys = Table(
    "vault_keys",
    Base.metadata,
    Column("client_id", String(64), ForeignKey("organisations.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("purpose", String(8), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("kek_id", String(64), nullable=False),  # the KEK that wrapped it, for status
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per customer and field: nonce || AES-256-GCM ciphertext and tag.
vault_values = Table(
    "vault_values",
    Base.metadata,
    Column("customer_id", _ID, ForeignKey("customers.id"), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("key_version", Integer, nullable=False),
    Column("blob", LargeBinary, nullable=False),
)

# Keyed blind index: HMAC of the normalised value, truncated; equality look-ups only.
vault_index = Table(
    "vault_index",
    Base.metadata,
    Column("client_id", String(64), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("digest", LargeBinary(16), primary_key=True),
    Column("customer_id", _ID, ForeignKey("customers.id"), primary_key=True),
    Index("ix_vault_index_customer", "customer_id", "field"),
)
