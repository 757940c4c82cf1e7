"""store.fast binds values as SQLAlchemy would, including the datetimes it remembers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, bindparam, cast, create_engine, select

from bpoguard.store.fast import Prepared

# The text the driver was given for a datetime, read back as text.
_AS_BOUND = select(cast(bindparam("at", type_=DateTime(timezone=True)), String))
_FAST = Prepared(_AS_BOUND)


def _bound(at: dt.datetime) -> tuple[str, str]:
    """(what SQLAlchemy binds, what store.fast binds) for one value."""
    with create_engine("sqlite://").connect() as conn:
        row = _FAST.one(conn, {"at": at})
        assert row is not None
        return str(conn.scalar(_AS_BOUND, {"at": at})), str(row[0])


def test_a_remembered_datetime_binds_as_sqlalchemy_binds_it() -> None:
    at = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    first = _bound(at)
    again = _bound(at)  # remembered this time
    assert first[0] == first[1] == again[1] == "2026-03-10 09:30:00.000000"


def test_the_same_instant_in_two_zones_is_not_confused() -> None:
    utc = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    kolkata = utc.astimezone(ZoneInfo("Asia/Kolkata"))
    assert utc == kolkata and hash(utc) == hash(kolkata)  # one dict key, but two texts
    sqlalchemy_utc, fast_utc = _bound(utc)
    sqlalchemy_kolkata, fast_kolkata = _bound(kolkata)
    assert fast_utc == sqlalchemy_utc
    assert fast_kolkata == sqlalchemy_kolkata != fast_utc
