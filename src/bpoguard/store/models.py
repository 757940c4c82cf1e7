"""The domain model: who works where, under which contract, for which customers.

Times are stored in UTC. Lists (premises networks, purposes' fields) are JSON
so the same schema runs on SQLite and PostgreSQL. Customer field *values* are
not here: the guard's vault owns them, encrypted.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from bpoguard.store._base import Base


def _enum(cls: type[enum.Enum]) -> Enum:
    # Stored as plain strings (no native ENUM type) so adding a member is a
    # code change, not a PostgreSQL migration.
    return Enum(cls, native_enum=False, length=32, values_callable=lambda c: [m.value for m in c])


class OrgKind(enum.StrEnum):
    CLIENT = "client"  # owns the customers and their data
    PROVIDER = "provider"  # the BPO or call centre doing the work
    EXTERNAL = "external"  # anyone else seen on the network (a rival firm, an ISP)


class StaffRole(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    INVESTIGATOR = "investigator"
    ADMIN = "admin"


class DeviceKind(enum.StrEnum):
    DESKTOP = "desktop"
    LAPTOP = "laptop"
    PHONE = "phone"


class DeviceStatus(enum.StrEnum):
    IN_STOCK = "in_stock"
    ISSUED = "issued"
    RETURNED = "returned"
    LOST = "lost"


class Channel(enum.StrEnum):
    CALL = "call"
    TICKET = "ticket"
    CHAT = "chat"
    EMAIL = "email"


class Organisation(Base):
    """A client company, a provider, or an outside party."""

    __tablename__ = "organisations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(_enum(OrgKind))
    country: Mapped[str] = mapped_column(String(2))
    networks: Mapped[list[str]] = mapped_column(JSON, default=list)  # CIDRs it is known to use


class Site(Base):
    """A provider's premises: where agents work and from which networks."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. MUM-1
    provider_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))  # IANA name, e.g. Asia/Kolkata
    premises_networks: Mapped[list[str]] = mapped_column(JSON, default=list)  # CIDRs


class Shift(Base):
    """A shift window at a site, in the site's local time; may cross midnight."""

    __tablename__ = "shifts"

    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # day, late, night
    start: Mapped[str] = mapped_column(String(5))  # HH:MM local
    end: Mapped[str] = mapped_column(String(5))  # HH:MM local; end < start wraps


class Contract(Base):
    """The data-handling terms between a client and a provider."""

    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    provider_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    allowed_sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    records_per_shift: Mapped[int] = mapped_column(Integer)  # distinct customers per agent
    records_per_hour: Mapped[int] = mapped_column(Integer)
    reveals_per_shift: Mapped[int] = mapped_column(Integer)
    off_premises_ban: Mapped[bool] = mapped_column(Boolean, default=True)
    retention_days: Mapped[int] = mapped_column(Integer)
    starts: Mapped[dt.date] = mapped_column(Date)
    ends: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Purpose(Base):
    """A purpose a contract allows, and the customer fields it needs."""

    __tablename__ = "purposes"

    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    fields: Mapped[list[str]] = mapped_column(JSON)  # field types shown (masked) for it
    revealable: Mapped[list[str]] = mapped_column(JSON)  # subset that may be revealed


class Staff(Base):
    """A person working for a provider (or a client's auditor, or an investigator)."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # e.g. MUM1-A0042
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole))
    team: Mapped[str | None] = mapped_column(String(64), nullable=True)
    supervisor_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    shift: Mapped[str | None] = mapped_column(String(32), nullable=True)
    joined: Mapped[dt.date] = mapped_column(Date)
    notice_given: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    left: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Device(Base):
    """A device or asset: who holds it, and whether it came back."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # asset tag
    kind: Mapped[DeviceKind] = mapped_column(_enum(DeviceKind))
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    holder_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    status: Mapped[DeviceStatus] = mapped_column(_enum(DeviceStatus))
    issued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    returned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lost_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SharedAccount(Base):
    """A client account (a shared mailbox) whose credentials staff are given."""

    __tablename__ = "shared_accounts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the mailbox address
    client_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    kind: Mapped[str] = mapped_column(String(32), default="mailbox")
    holders: Mapped[list[str]] = mapped_column(JSON, default=list)  # staff ids given access


class Customer(Base):
    """A client's customer. Field values live in the guard's encrypted vault."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"))
    ref: Mapped[str] = mapped_column(String(64))  # the client's own customer reference
    country: Mapped[str] = mapped_column(String(2))
    is_canary: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_customers_client_ref", "client_id", "ref", unique=True),)


class Interaction(Base):
    """A call, ticket, chat or e-mail: the reason an agent may see a customer."""

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.id"))
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_interactions_staff_opened", "staff_id", "opened_at"),
        Index("ix_interactions_customer", "customer_id"),
    )
