"""Which source files were imported: the ledger of imports that makes re-imports add nothing.

Each file imported into the lake is recorded by the SHA-256 of its bytes and
the kind of source it was read as (``cert.logon``, ``m365.audit``, ...), with
the rows it added, the bad lines it skipped, the time span it covered and the
lake run that holds its rows. Importing a file whose digest and kind are
already here is a no-op.

Owns the table ``imports``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
)
from sqlalchemy.orm import Session

from bpoguard.store._base import Base

_ID = BigInteger().with_variant(Integer, "sqlite")

imports = Table(
    "imports",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("sha256", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),  # the file's name, not its folder
    Column("rows", BigInteger, nullable=False),
    Column("skipped", BigInteger, nullable=False),
    Column("first_time", DateTime(timezone=True), nullable=True),
    Column("last_time", DateTime(timezone=True), nullable=True),
    Column("run_id", String(16), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("sha256", "kind", name="uq_imports_sha256_kind"),
)


@dataclass(frozen=True)
class ImportRecord:
    """One imported file."""

    sha256: str
    kind: str
    name: str
    rows: int
    skipped: int
    first_time: dt.datetime | None
    last_time: dt.datetime | None
    run_id: str
    imported_at: dt.datetime


def find(session: Session | Connection, sha256: str, kind: str) -> ImportRecord | None:
    """The earlier import of these bytes as this kind, if any."""
    row = session.execute(
        select(imports).where(imports.c.sha256 == sha256, imports.c.kind == kind)
    ).first()
    return None if row is None else _record(row._mapping)


def record(session: Session | Connection, entry: ImportRecord) -> None:
    """Note an import (inside the caller's transaction; a duplicate raises IntegrityError)."""
    session.execute(
        insert(imports).values(
            sha256=entry.sha256,
            kind=entry.kind,
            name=entry.name[:255],
            rows=entry.rows,
            skipped=entry.skipped,
            first_time=entry.first_time,
            last_time=entry.last_time,
            run_id=entry.run_id,
            imported_at=entry.imported_at,
        )
    )


def listing(session: Session | Connection) -> list[ImportRecord]:
    """Every import, oldest first."""
    rows = session.execute(select(imports).order_by(imports.c.id)).all()
    return [_record(r._mapping) for r in rows]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _record(row: object) -> ImportRecord:
    m = dict(row)  # type: ignore[call-overload]
    return ImportRecord(
        sha256=m["sha256"],
        kind=m["kind"],
        name=m["name"],
        rows=int(m["rows"]),
        skipped=int(m["skipped"]),
        first_time=_utc(m["first_time"]),
        last_time=_utc(m["last_time"]),
        run_id=m["run_id"],
        imported_at=_utc(m["imported_at"]) or m["imported_at"],
    )
