"""The guard's budgets: distinct customers per shift and per hour, reveals per shift,
and verification attempts per interaction, kept in the store so that every web
worker sees the same counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Integer,
    Row,
    String,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    new_in_hour: bool | None = None  # not yet counted this hour; None: not read


def hour_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


# Statements are built once: constructing SQLAlchemy expressions on every request
# cost more than running them (measured: about 40% of a decision).
def _touched_in(scope: str) -> ColumnElement[bool]:
    return and_(
        touched.c.staff_id == bindparam("staff"),
        touched.c.scope == scope,
        touched.c.period == bindparam(scope),
    )


def _seen(scope: str) -> ColumnElement[bool]:
    return (
        select(touched.c.customer_id)
        .where(_touched_in(scope), touched.c.customer_id == bindparam("customer"))
        .exists()
    )


# The usage of one person's budgets as columns, so that the guard can read them in
# the same statement as the customer and the interaction (one round trip a request).
COLUMNS = (
    _seen(SHIFT).label("u_seen_shift"),
    _seen(HOUR).label("u_seen_hour"),
    select(func.count())
    .select_from(touched)
    .where(_touched_in(SHIFT))
    .scalar_subquery()
    .label("u_shift"),
    select(func.count())
    .select_from(touched)
    .where(_touched_in(HOUR))
    .scalar_subquery()
    .label("u_hour"),
    select(func.coalesce(func.max(counters.c.count), 0))
    .where(
        counters.c.staff_id == bindparam("staff"),
        counters.c.scope == REVEALS,
        counters.c.period == bindparam(SHIFT),
    )
    .scalar_subquery()
    .label("u_reveals"),
)
_USAGE = select(*COLUMNS)


def params(
    staff_id: str, customer_id: int, shift_start: dt.datetime | None, at: dt.datetime
) -> dict[str, object]:
    """The bound values COLUMNS need (no shift: nothing is counted, everything is new)."""
    return {"staff": staff_id, "customer": customer_id, SHIFT: shift_start, HOUR: hour_of(at)}


def from_row(row: Row[Any]) -> Usage:
    """The Usage in a row that selected COLUMNS."""
    return Usage(
        not row.u_seen_shift,
        int(row.u_shift),
        int(row.u_hour),
        int(row.u_reveals),
        new_in_hour=not row.u_seen_hour,
    )


_SEEN_IN = {
    scope: select(touched.c.customer_id).where(
        _touched_in(scope), touched.c.customer_id == bindparam("customer")
    )
    for scope in (SHIFT, HOUR)
}
# A person's two concurrent requests may both read a customer as not yet counted;
# the second insert then finds the row there, which is no error: the count is right.
_ADD_TOUCH = {
    "sqlite": sqlite_insert(touched).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(touched).on_conflict_do_nothing(),
}
_COUNTER = and_(
    counters.c.staff_id == bindparam("b_staff"),
    counters.c.scope == bindparam("b_scope"),
    counters.c.period == bindparam("b_period"),
)
_BUMP = update(counters).where(_COUNTER).values(count=counters.c.count + bindparam("b_by"))
_NEW_COUNTER = insert(counters)
_ATTEMPTS = select(verify_attempts.c.attempts).where(
    verify_attempts.c.interaction_id == bindparam("interaction")
)


def read(
    conn: Connection, staff_id: str, customer_id: int, shift_start: dt.datetime, at: dt.datetime
) -> Usage:
    """Current usage of a person's budgets in the shift that started at shift_start."""
    return from_row(conn.execute(_USAGE, params(staff_id, customer_id, shift_start, at)).one())


def record(
    conn: Connection,
    staff_id: str,
    customer_id: int,
    shift_start: dt.datetime,
    at: dt.datetime,
    reveals: int,
    known: Usage | None = None,
) -> None:
    """Count an allowed access against the person's budgets.

    ``known``: the usage read for this request in this transaction; it says
    whether the customer is already counted, so no second look is needed.
    """
    for scope, period in ((SHIFT, shift_start), (HOUR, hour_of(at))):
        new = None
        if known is not None:
            new = known.new_customer if scope == SHIFT else known.new_in_hour
        if new is None:
            key = {"staff": staff_id, "customer": customer_id, scope: period}
            new = conn.execute(_SEEN_IN[scope], key).first() is None
        if new:
            row = {"staff_id": staff_id, "scope": scope, "period": period,
                   "customer_id": customer_id}  # fmt: skip
            conn.execute(_ADD_TOUCH[conn.dialect.name], row)
    if reveals:
        key = {"b_staff": staff_id, "b_scope": REVEALS, "b_period": shift_start}
        if not conn.execute(_BUMP, {**key, "b_by": reveals}).rowcount:
            row = {"staff_id": staff_id, "scope": REVEALS, "period": shift_start, "count": reveals}
            conn.execute(_NEW_COUNTER, row)


_SEEN_AMONG = select(touched.c.customer_id).where(
    _touched_in(SHIFT), touched.c.customer_id.in_(bindparam("customers", expanding=True))
)


def read_many(
    conn: Connection,
    staff_id: str,
    customer_ids: Sequence[int],
    shift_start: dt.datetime,
    at: dt.datetime,
) -> tuple[Usage, list[int]]:
    """Usage of a person's budgets, and which of customer_ids are not yet counted this shift."""
    totals = read(conn, staff_id, -1, shift_start, at)  # -1: no customer has it
    if not customer_ids:
        return Usage(False, totals.records_shift, totals.records_hour, totals.reveals_shift), []
    params = {"staff": staff_id, SHIFT: shift_start, "customers": list(customer_ids)}
    seen = set(conn.scalars(_SEEN_AMONG, params))
    new = [i for i in customer_ids if i not in seen]
    return Usage(bool(new), totals.records_shift, totals.records_hour, totals.reveals_shift), new


def record_many(
    conn: Connection,
    staff_id: str,
    customer_ids: Sequence[int],
    shift_start: dt.datetime,
    at: dt.datetime,
) -> None:
    """Count customers shown together (a search's rows) against the person's budgets."""
    for customer_id in customer_ids:
        record(conn, staff_id, customer_id, shift_start, at, 0)


def take_verify_attempt(conn: Connection, interaction_id: int, limit: int) -> int:
    """Use one verification attempt of an interaction; return how many remain (-1: none left)."""
    used = conn.execute(_ATTEMPTS, {"interaction": interaction_id}).scalar()
    if used is None:
        conn.execute(insert(verify_attempts).values(interaction_id=interaction_id, attempts=1))
        return limit - 1
    if int(used) >= limit:
        return -1
    conn.execute(
        update(verify_attempts)
        .where(verify_attempts.c.interaction_id == interaction_id)
        .values(attempts=int(used) + 1)
    )
    return limit - int(used) - 1
