"""Budget counting: distinct customers per shift and hour, robust to a racing second count."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from bpoguard.guard import usage
from bpoguard.store import Store

SHIFT = dt.datetime(2026, 3, 10, 3, 30, tzinfo=dt.UTC)
AT = SHIFT + dt.timedelta(hours=2, minutes=5)


@pytest.fixture(scope="module")
def store(store_db: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A migrated store on SQLite and, when configured, PostgreSQL."""
    url = store_db or f"sqlite:///{tmp_path_factory.mktemp('usage') / 'u.db'}"
    opened = Store(url)
    opened.migrate()
    yield opened
    opened.dispose()


def test_a_customer_counted_twice_at_once_is_counted_once(store: Store) -> None:
    with store.engine.begin() as conn:
        seen_as_new = usage.read(conn, "MUM1-A00001", 7, SHIFT, AT)
        assert seen_as_new.new_customer and seen_as_new.new_in_hour
        # Two requests that both read the customer as new, as two workers could: the
        # second finds the customer counted and takes nothing, to be decided again.
        assert usage.take(conn, "MUM1-A00001", 7, SHIFT, AT, 0, seen_as_new)
        assert not usage.take(conn, "MUM1-A00001", 7, SHIFT, AT, 0, seen_as_new)
        again = usage.read(conn, "MUM1-A00001", 8, SHIFT, AT)
        assert usage.take(conn, "MUM1-A00001", 8, SHIFT, AT, 1, again)
        now = usage.read(conn, "MUM1-A00001", 7, SHIFT, AT)
    assert (now.new_customer, now.records_shift, now.records_hour, now.reveals_shift) == (
        False, 2, 2, 1)  # fmt: skip


def test_a_search_counts_only_the_rows_not_yet_counted(store: Store) -> None:
    with store.engine.begin() as conn:
        first = usage.read(conn, "MUM1-A00002", 1, SHIFT, AT)
        assert usage.take(conn, "MUM1-A00002", 1, SHIFT, AT, 0, first)
        used, new = usage.read_many(conn, "MUM1-A00002", [1, 2, 3], SHIFT, AT)
        assert (used.records_shift, new) == (1, [2, 3])
        assert usage.take_many(conn, "MUM1-A00002", [1, 2, 3], new, SHIFT, AT, used)
        after, none = usage.read_many(conn, "MUM1-A00002", [1, 2, 3], SHIFT, AT)
    assert (after.records_shift, after.records_hour, none) == (3, 3, [])
