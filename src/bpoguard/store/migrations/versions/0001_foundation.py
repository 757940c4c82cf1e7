"""foundation: organisations, sites, contracts, staff, devices, customers, interactions

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22 18:48:19.771584
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("client", "provider", "external", name="orgkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )
    op.create_table(
        "contracts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("allowed_sites", sa.JSON(), nullable=False),
        sa.Column("records_per_shift", sa.Integer(), nullable=False),
        sa.Column("records_per_hour", sa.Integer(), nullable=False),
        sa.Column("reveals_per_shift", sa.Integer(), nullable=False),
        sa.Column("off_premises_ban", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("starts", sa.Date(), nullable=False),
        sa.Column("ends", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_contracts_client_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["organisations.id"],
            name=op.f("fk_contracts_provider_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contracts")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("is_canary", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["organisations.id"], name=op.f("fk_customers_client_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index("ix_customers_client_ref", ["client_id", "ref"], unique=True)

    op.create_table(
        "shared_accounts",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("holders", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["organisations.id"],
            name=op.f("fk_shared_accounts_client_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_accounts")),
    )
    op.create_table(
        "sites",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("premises_networks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["organisations.id"], name=op.f("fk_sites_provider_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    op.create_table(
        "purposes",
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("revealable", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_purposes_contract_id_contracts")
        ),
        sa.PrimaryKeyConstraint("contract_id", "name", name=op.f("pk_purposes")),
    )
    op.create_table(
        "shifts",
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("start", sa.String(length=5), nullable=False),
        sa.Column("end", sa.String(length=5), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_shifts_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "name", name=op.f("pk_shifts")),
    )
    op.create_table(
        "staff",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("organisation_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "agent",
                "supervisor",
                "analyst",
                "auditor",
                "investigator",
                "admin",
                name="staffrole",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("supervisor_id", sa.String(length=32), nullable=True),
        sa.Column("shift", sa.String(length=32), nullable=True),
        sa.Column("joined", sa.Date(), nullable=False),
        sa.Column("notice_given", sa.Date(), nullable=True),
        sa.Column("left", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_staff_organisation_id_organisations"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_staff_site_id_sites")),
        sa.ForeignKeyConstraint(
            ["supervisor_id"], ["staff.id"], name=op.f("fk_staff_supervisor_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("desktop", "laptop", "phone", name="devicekind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("site_id", sa.String(length=32), nullable=True),
        sa.Column("holder_id", sa.String(length=32), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "in_stock",
                "issued",
                "returned",
                "lost",
                name="devicestatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["staff.id"], name=op.f("fk_devices_holder_id_staff")
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_devices_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("contract_id", sa.String(length=64), nullable=False),
        sa.Column("staff_id", sa.String(length=32), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "call", "ticket", "chat", "email", name="channel", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name=op.f("fk_interactions_contract_id_contracts")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_interactions_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_interactions_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index("ix_interactions_customer", ["customer_id"], unique=False)
        batch_op.create_index(
            "ix_interactions_staff_opened", ["staff_id", "opened_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_staff_opened")
        batch_op.drop_index("ix_interactions_customer")

    op.drop_table("interactions")
    op.drop_table("devices")
    op.drop_table("staff")
    op.drop_table("shifts")
    op.drop_table("purposes")
    op.drop_table("sites")
    op.drop_table("shared_accounts")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_client_ref")

    op.drop_table("customers")
    op.drop_table("contracts")
    op.drop_table("organisations")
