"""The guard's budgets: distinct customers per shift and per hour, reveals per shift,
and verification attempts per interaction, kept in the store so that every web
worker sees the same counts.

A budget place is taken atomically. Each count is a row of ``guard_counters``
(a customer is counted once a period through its row in ``guard_touched``),
and an allowed request moves a count only from the value its decision read:
``UPDATE ... SET count = new WHERE ... AND count = old``. Two workers that
read the same count and were both allowed cannot both move it: on SQLite the
second waits for the file's write lock and then finds the count moved; on
PostgreSQL it waits for the first's row lock and re-checks the condition on
the committed row. The loser takes nothing (whatever it had written is put
back) and is decided again on fresh counts, so the budget is never overrun
and every decision is made on counts that were true when it was taken.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from bpoguard.store._base import Base
from bpoguard.store.fast import Prepared

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

# One count a person, scope and period: distinct customers in a shift ("shift")
# or a clock hour ("hour"), and reveals in a shift ("reveals").
counters = Table(
    "guard_counters",
    Base.metadata,
    Column("staff_id", String(32), primary_key=True),
    Column("scope", String(8), primary_key=True),
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
    """The start (UTC) of the clock hour that holds ``at``."""
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


# Statements are built once: constructing SQLAlchemy expressions on every request
# cost more than running them (measured: about 40% of a decision).
_PERIOD = counters.c.period.type


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


def _count(scope: str, period: str) -> ColumnElement[int]:
    found = (
        select(counters.c.count)
        .where(
            counters.c.staff_id == bindparam("staff"),
            counters.c.scope == scope,
            counters.c.period == bindparam(period),
        )
        .scalar_subquery()
    )
    return func.coalesce(found, 0)


# The usage of one person's budgets as columns, so that the guard can read them in
# the same statement as the customer and the interaction (one round trip a request).
# Counts are read from their counter rows (one primary-key look-up each), not
# counted from the touched rows.
COLUMNS = (
    _seen(SHIFT).label("u_seen_shift"),
    _seen(HOUR).label("u_seen_hour"),
    _count(SHIFT, SHIFT).label("u_shift"),
    _count(HOUR, HOUR).label("u_hour"),
    _count(REVEALS, SHIFT).label("u_reveals"),
)
_USAGE = Prepared(select(*COLUMNS))


def params(
    staff_id: str, customer_id: int, shift_start: dt.datetime | None, at: dt.datetime
) -> dict[str, object]:
    """The bound values COLUMNS need (no shift: nothing is counted, everything is new)."""
    return {"staff": staff_id, "customer": customer_id, SHIFT: shift_start, HOUR: hour_of(at)}


def from_values(
    seen_shift: object, seen_hour: object, shift: object, hour: object, reveals: object
) -> Usage:
    """The Usage in the five values of COLUMNS, in their order."""
    return Usage(
        not seen_shift,
        int(shift),  # type: ignore[call-overload]
        int(hour),  # type: ignore[call-overload]
        int(reveals),  # type: ignore[call-overload]
        new_in_hour=not seen_hour,
    )


def read(
    conn: Connection, staff_id: str, customer_id: int, shift_start: dt.datetime, at: dt.datetime
) -> Usage:
    """Current usage of a person's budgets in the shift that started at shift_start."""
    row = _USAGE.one(conn, params(staff_id, customer_id, shift_start, at))
    assert row is not None  # a SELECT of scalar subqueries always returns its one row
    return from_values(*row)


# --- taking places ----------------------------------------------------------------------

_KEY = {
    "staff_id": bindparam("staff"),
    "scope": bindparam("scope"),
    "period": bindparam("period", type_=_PERIOD),
}
_TOUCH_ROW = {**_KEY, "customer_id": bindparam("customer")}
_COUNTER_ROW = {**_KEY, "count": bindparam("new")}
# "Count this customer" and "create this count": the same SQL on both databases, but
# each dialect's insert construct spells its ON CONFLICT clause.
_ADD_TOUCH = {
    "sqlite": Prepared(sqlite_insert(touched).values(_TOUCH_ROW).on_conflict_do_nothing()),
    "postgresql": Prepared(postgresql_insert(touched).values(_TOUCH_ROW).on_conflict_do_nothing()),
}
_NEW_COUNTER = {
    "sqlite": Prepared(sqlite_insert(counters).values(_COUNTER_ROW).on_conflict_do_nothing()),
    "postgresql": Prepared(
        postgresql_insert(counters).values(_COUNTER_ROW).on_conflict_do_nothing()
    ),
}
_IS_TOUCH = and_(
    touched.c.staff_id == bindparam("staff"),
    touched.c.scope == bindparam("scope"),
    touched.c.period == bindparam("period", type_=_PERIOD),
    touched.c.customer_id == bindparam("customer"),
)
_UNTOUCH = Prepared(delete(touched).where(_IS_TOUCH))
_IS_COUNTER = and_(
    counters.c.staff_id == bindparam("staff"),
    counters.c.scope == bindparam("scope"),
    counters.c.period == bindparam("period", type_=_PERIOD),
)
# The conditional update that makes a place atomic: it moves the count only from
# the value the decision read.
_MOVE = Prepared(
    update(counters)
    .where(_IS_COUNTER, counters.c.count == bindparam("old"))
    .values(count=bindparam("new"))
)
_GIVE_BACK = Prepared(
    update(counters).where(_IS_COUNTER).values(count=counters.c.count - bindparam("by"))
)


# A customer's first decision in a shift counts it in the shift and the hour: both
# touch rows in one statement and both counts moved in one (four round trips were
# two too many on PostgreSQL).
def _touch_row(scope: str) -> dict[str, object]:
    return {"staff_id": bindparam("staff"), "scope": scope,
            "period": bindparam(scope, type_=_PERIOD), "customer_id": bindparam("customer")}  # fmt: skip


_BOTH_ROWS = [_touch_row(SHIFT), _touch_row(HOUR)]
_ADD_BOTH = {
    "sqlite": Prepared(
        sqlite_insert(touched).values(_BOTH_ROWS).on_conflict_do_nothing()
        .returning(touched.c.scope)
    ),
    "postgresql": Prepared(
        postgresql_insert(touched).values(_BOTH_ROWS).on_conflict_do_nothing()
        .returning(touched.c.scope)
    ),
}  # fmt: skip


def _was(scope: str) -> ColumnElement[bool]:
    return and_(
        counters.c.scope == scope,
        counters.c.period == bindparam(scope, type_=_PERIOD),
        counters.c.count == bindparam(f"old_{scope}"),
    )


_MOVE_BOTH = Prepared(
    update(counters)
    .where(counters.c.staff_id == bindparam("staff"), or_(_was(SHIFT), _was(HOUR)))
    .values(count=counters.c.count + 1)
    .returning(counters.c.scope)
)


@dataclass
class _Taking:
    """What one take wrote so far, so that a take that fails can put it all back."""

    conn: Connection
    staff_id: str
    touched: list[tuple[str, dt.datetime, int]]
    moved: list[tuple[str, dt.datetime, int]]

    def touch(self, scope: str, period: dt.datetime, customer_id: int) -> bool:
        """Count a customer in a period; False if it was already counted (by a racing request)."""
        key = {"staff": self.staff_id, "scope": scope, "period": period, "customer": customer_id}
        if _ADD_TOUCH[self.conn.dialect.name].execute(self.conn, key) != 1:
            return False
        self.touched.append((scope, period, customer_id))
        return True

    def move(self, scope: str, period: dt.datetime, old: int, by: int) -> bool:
        """Move a count from old to old + by; False if it is no longer old."""
        key = {"staff": self.staff_id, "scope": scope, "period": period}
        moved = _MOVE.execute(self.conn, {**key, "old": old, "new": old + by}) == 1
        if not moved and old == 0:
            created = _NEW_COUNTER[self.conn.dialect.name]
            moved = created.execute(self.conn, {**key, "new": by}) == 1
        if moved:
            self.moved.append((scope, period, by))
        return moved

    def first_touch(self, shift_start: dt.datetime, hour: dt.datetime, customer_id: int,
                    known: Usage) -> bool:  # fmt: skip
        """Count a customer new in the shift and the hour: two statements, or three or four
        when a count is created. False if a racing request counted it or moved a count."""
        conn = self.conn
        key = {"staff": self.staff_id, SHIFT: shift_start, HOUR: hour, "customer": customer_id}
        inserted = {row[0] for row in _ADD_BOTH[conn.dialect.name].all(conn, key)}
        periods = {SHIFT: shift_start, HOUR: hour}
        self.touched.extend((scope, periods[scope], customer_id) for scope in sorted(inserted))
        if inserted != {SHIFT, HOUR}:
            return False
        olds = {SHIFT: known.records_shift, HOUR: known.records_hour}
        moved = {row[0] for row in _MOVE_BOTH.all(conn, {**key, "old_shift": olds[SHIFT],
                                                            "old_hour": olds[HOUR]})}  # fmt: skip
        self.moved.extend((scope, periods[scope], 1) for scope in sorted(moved))
        for scope in (SHIFT, HOUR):
            if scope in moved:
                continue
            if olds[scope] != 0:
                return False
            created = _NEW_COUNTER[conn.dialect.name]
            row = {"staff": self.staff_id, "scope": scope, "period": periods[scope], "new": 1}
            if created.execute(conn, row) != 1:
                return False
            self.moved.append((scope, periods[scope], 1))
        return True

    def undo(self) -> None:
        """Put back every count moved and every customer counted by this take."""
        for scope, period, by in reversed(self.moved):
            key = {"staff": self.staff_id, "scope": scope, "period": period, "by": by}
            _GIVE_BACK.execute(self.conn, key)
        for scope, period, customer_id in reversed(self.touched):
            key = {"staff": self.staff_id, "scope": scope, "period": period,
                   "customer": customer_id}  # fmt: skip
            _UNTOUCH.execute(self.conn, key)


def take(
    conn: Connection,
    staff_id: str,
    customer_id: int,
    shift_start: dt.datetime,
    at: dt.datetime,
    reveals: int,
    known: Usage,
) -> bool:
    """Charge an allowed access to the person's budgets, atomically, from the usage it read.

    Returns False, having changed nothing, when another request moved any of
    these counts since ``known`` was read: decide again on fresh usage.
    """
    taking = _Taking(conn, staff_id, [], [])
    hour = hour_of(at)
    ok = True
    if known.new_customer and known.new_in_hour:
        ok = taking.first_touch(shift_start, hour, customer_id, known)
    elif known.new_customer:
        ok = taking.touch(SHIFT, shift_start, customer_id) and taking.move(
            SHIFT, shift_start, known.records_shift, 1
        )
    if ok and known.new_in_hour is not False and not (known.new_customer and known.new_in_hour):
        if taking.touch(HOUR, hour, customer_id):
            ok = taking.move(HOUR, hour, known.records_hour, 1)
        else:
            ok = known.new_in_hour is None  # not read: already counted is no surprise
    if ok and reveals:
        ok = taking.move(REVEALS, shift_start, known.reveals_shift, reveals)
    if not ok:
        taking.undo()
    return ok


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


def take_many(
    conn: Connection,
    staff_id: str,
    customer_ids: Sequence[int],
    new: Sequence[int],
    shift_start: dt.datetime,
    at: dt.datetime,
    known: Usage,
) -> bool:
    """Charge customers shown together (a search's rows), atomically, from the usage read.

    ``new`` are those :func:`read_many` found not yet counted this shift. False,
    having changed nothing, when another request moved the counts meanwhile.
    """
    taking = _Taking(conn, staff_id, [], [])
    hour = hour_of(at)
    # Ascending ids: two searches over the same customers wait on each other's rows
    # in the same order, so PostgreSQL never sees them deadlock.
    fresh = sorted(set(new))
    ok = all(taking.touch(SHIFT, shift_start, i) for i in fresh)
    if ok and fresh:
        ok = taking.move(SHIFT, shift_start, known.records_shift, len(fresh))
    if ok:
        in_hour = [i for i in sorted(set(customer_ids)) if taking.touch(HOUR, hour, i)]
        if in_hour:
            ok = taking.move(HOUR, hour, known.records_hour, len(in_hour))
    if not ok:
        taking.undo()
    return ok


# --- verification attempts ----------------------------------------------------------------

_IS_CALL = verify_attempts.c.interaction_id == bindparam("interaction")
_NEXT_ATTEMPT = Prepared(
    update(verify_attempts)
    .where(_IS_CALL, verify_attempts.c.attempts < bindparam("limit"))
    .values(attempts=verify_attempts.c.attempts + 1)
    .returning(verify_attempts.c.attempts)
)
_ROW = {"interaction_id": bindparam("interaction"), "attempts": 1}
_FIRST_ATTEMPT = {
    "sqlite": Prepared(sqlite_insert(verify_attempts).values(_ROW).on_conflict_do_nothing()),
    "postgresql": Prepared(
        postgresql_insert(verify_attempts).values(_ROW).on_conflict_do_nothing()
    ),
}


def take_verify_attempt(conn: Connection, interaction_id: int, limit: int) -> int:
    """Use one verification attempt of an interaction; return how many remain (-1: none left).

    One conditional statement: two verifications racing for the last attempt
    cannot both have it.
    """
    if limit < 1:
        return -1
    key = {"interaction": interaction_id, "limit": limit}
    row = _NEXT_ATTEMPT.one(conn, key)
    if row is not None:
        return limit - int(row[0])
    if _FIRST_ATTEMPT[conn.dialect.name].execute(conn, key) == 1:
        return limit - 1
    row = _NEXT_ATTEMPT.one(conn, key)  # created by a racing first attempt just now
    return limit - int(row[0]) if row is not None else -1
