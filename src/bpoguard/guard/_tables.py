"""The guard's tables.

- vault_keys, vault_values, vault_index: owned by :mod:`bpoguard.guard.vault`.
- guard_disclosures (which customers a search or export showed, by ledger
  entry) and export_approvals: owned by :mod:`bpoguard.guard.approvals`.
- guard_policies (each contract's own Cedar policy text): owned by
  :mod:`bpoguard.guard.policy_texts`.

Nobody else reads or writes them.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
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

# Every customer a search or an export put in front of someone, tied to the
# decision's ledger entry (NULL while a batching sink still holds it): the ledger
# entry of a search names no single customer, this says which ones it showed.
guard_disclosures = Table(
    "guard_disclosures",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("ledger_index", BigInteger, nullable=True),
    Column("staff_id", String(32), nullable=False),
    Column("verb", String(16), nullable=False),  # search or export
    Column("customer_id", _ID, ForeignKey("customers.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_guard_disclosures_customer", "customer_id", "at"),
    Index("ix_guard_disclosures_staff", "staff_id", "at"),
)

# A supervisor's approval for one person to export named customers' fields, once,
# before it expires.
export_approvals = Table(
    "export_approvals",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("client_id", String(64), ForeignKey("organisations.id"), nullable=False),
    Column("staff_id", String(32), ForeignKey("staff.id"), nullable=False),
    Column("approved_by", String(32), ForeignKey("staff.id"), nullable=False),
    Column("customer_ids", JSON, nullable=False),
    Column("fields", JSON, nullable=False),
    Column("reason", String(200), nullable=False),
    Column("approved_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("used_ledger_index", BigInteger, nullable=True),
    Column("ledger_index", BigInteger, nullable=True),  # the entry recording it given
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(32), ForeignKey("staff.id"), nullable=True),
    Column("revoke_reason", String(200), nullable=True),
    Column("revoked_ledger_index", BigInteger, nullable=True),
)

# A contract's own policy set; a contract without a row uses the shipped default.
guard_policies = Table(
    "guard_policies",
    Base.metadata,
    Column("contract_id", String(64), ForeignKey("contracts.id"), primary_key=True),
    Column("text", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
)
