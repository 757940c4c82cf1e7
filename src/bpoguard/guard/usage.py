"""The guard's budgets: distinct customers per shift and per hour, reveals per shift,
and verification attempts per interaction, kept in the store so that every web
worker sees the same counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    String,
    Table,
    and_,
    func,
    insert,
    select,
    update,
)

from bpoguard.store._base import Base

SHIFT = "shift"
HOUR = "hour"
REVEALS = "reveals"

touched = Table(
    "guard_touched",
    Base.metadata,
    Column("staff_id", String(32), primary_key=True),
    Column("scope", String(8), primary_key=True),  # shift or hour
    Column("period", DateTime(timezone=True), primary_key=True),  # its start, UTC
    Column("customer_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
)

counters = Table(
    "guard_counters",
    Base.metadata,
    Column("staff_id", String(32), primary_key=True),
    Column("scope", String(8), primary_key=True),  # reveals
    Column("period", DateTime(timezone=True), primary_key=True),
    Column("count", Integer, nullable=False),
)

verify_attempts = Table(
    "guard_verify_attempts",
    Base.metadata,
    Column("interaction_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("attempts", Integer, nullable=False),
)


@dataclass(frozen=True)
class Usage:
    """How much of a person's budgets is used, as a decision sees it."""

    new_customer: bool  # not yet counted in this shift
    records_shift: int
    records_hour: int
    reveals_shift: int


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def read(
    conn: Connection, staff_id: str, customer_id: int, shift_start: dt.datetime, at: dt.datetime
) -> Usage:
    """Current usage of a person's budgets in the shift that started at shift_start."""
    seen = conn.execute(
        select(touched.c.customer_id).where(
            _key(staff_id, SHIFT, shift_start), touched.c.customer_id == customer_id
        )
    ).first()
    return Usage(
        new_customer=seen is None,
        records_shift=_count(conn, staff_id, SHIFT, shift_start),
        records_hour=_count(conn, staff_id, HOUR, hour_of(at)),
        reveals_shift=_counter(conn, staff_id, REVEALS, shift_start),
    )


def record(
    conn: Connection,
    staff_id: str,
    customer_id: int,
    shift_start: dt.datetime,
    at: dt.datetime,
    reveals: int,
) -> None:
    """Count an allowed access against the person's budgets."""
    for scope, period in ((SHIFT, shift_start), (HOUR, hour_of(at))):
        exists = conn.execute(
            select(touched.c.customer_id).where(
                _key(staff_id, scope, period), touched.c.customer_id == customer_id
            )
        ).first()
        if exists is None:
            conn.execute(insert(touched).values(staff_id=staff_id, scope=scope, period=period,
                                                customer_id=customer_id))  # fmt: skip
    if reveals:
        _bump(conn, staff_id, REVEALS, shift_start, reveals)


def take_verify_attempt(conn: Connection, interaction_id: int, limit: int) -> int:
    """Use one verification attempt of an interaction; return how many remain (-1: none left)."""
    used = conn.execute(
        select(verify_attempts.c.attempts).where(verify_attempts.c.interaction_id == interaction_id)
    ).scalar()
    if used is None:
        conn.execute(insert(verify_attempts).values(interaction_id=interaction_id, attempts=1))
        return limit - 1
    if int(used) >= limit:
        return -1
    conn.execute(
        update(verify_attempts)
        .where(verify_attempts.c.interaction_id == interaction_id)
        .values(attempts=used + 1)
    )
    return limit - int(used) - 1


def _key(staff_id: str, scope: str, period: dt.datetime) -> ColumnElement[bool]:
    return and_(
        touched.c.staff_id == staff_id, touched.c.scope == scope, touched.c.period == period
    )


def _count(conn: Connection, staff_id: str, scope: str, period: dt.datetime) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(touched).where(_key(staff_id, scope, period))
        ).scalar_one()
    )


def _counter(conn: Connection, staff_id: str, scope: str, period: dt.datetime) -> int:
    value = conn.execute(
        select(counters.c.count).where(
            counters.c.staff_id == staff_id, counters.c.scope == scope, counters.c.period == period
        )
    ).scalar()
    return int(value or 0)


def _bump(conn: Connection, staff_id: str, scope: str, period: dt.datetime, by: int) -> None:
    where = and_(counters.c.staff_id == staff_id, counters.c.scope == scope,
                 counters.c.period == period)  # fmt: skip
    if conn.execute(update(counters).where(where).values(count=counters.c.count + by)).rowcount:
        return
    conn.execute(insert(counters).values(staff_id=staff_id, scope=scope, period=period, count=by))
