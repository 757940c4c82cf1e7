"""Migration 0010: budgets counted before the upgrade carry over into their counters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from sqlalchemy import insert, select

from bpoguard.guard import usage
from bpoguard.store import Store

SHIFT = dt.datetime(2026, 3, 10, 3, 30, tzinfo=dt.UTC)
AT = SHIFT + dt.timedelta(hours=2, minutes=5)


def test_upgrade_starts_each_count_at_the_customers_already_counted(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.migrate("0009_detect")
        hour = usage.hour_of(AT)
        rows = [{"staff_id": "MUM1-A00001", "scope": scope, "period": period, "customer_id": c}
                for scope, period in ((usage.SHIFT, SHIFT), (usage.HOUR, hour))
                for c in (11, 12, 13)]  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(insert(usage.touched), rows)
            conn.execute(insert(usage.counters).values(staff_id="MUM1-A00001",
                         scope=usage.REVEALS, period=SHIFT, count=2))  # fmt: skip
        store.migrate()
        with store.engine.begin() as conn:
            used = usage.read(conn, "MUM1-A00001", 14, SHIFT, AT)
            assert (used.records_shift, used.records_hour, used.reveals_shift) == (3, 3, 2)
            # The next customer moves the count on from there.
            assert usage.take(conn, "MUM1-A00001", 14, SHIFT, AT, 0, used)
        cfg = store._alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0009_detect")
        with store.engine.connect() as conn:
            left = conn.execute(select(usage.counters.c.scope)).scalars().all()
        assert left == [usage.REVEALS], "downgrade drops only the distinct-customer counts"
    finally:
        store.dispose()
