"""The unguarded gateway's bulk insert writes the rows SQLAlchemy's insert would."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from sqlalchemy import insert, select

from bpoguard import workspace
from bpoguard.simulate.gateway import _INSERT_INTERACTIONS
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def _interactions(conn: object) -> list[tuple[object, ...]]:
    rows = conn.exec_driver_sql("SELECT * FROM interactions ORDER BY id")  # type: ignore[attr-defined]
    return [tuple(r) for r in rows]


def test_bulk_insert_stores_what_sqlalchemy_stores(home: Path) -> None:
    workspace.init(home)
    ws = Workspace.open(home)
    simulate(ws, SimConfig(agents=12, customers=1_000, days=1, scenarios="none", seed=2))
    with ws.store.engine.begin() as conn:
        staff, contract = conn.execute(
            select(m.Interaction.staff_id, m.Interaction.contract_id).limit(1)
        ).one()
        customer = int(conn.execute(select(m.Customer.id).limit(1)).scalar_one())
        opened = dt.datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=IST)
        rows = [
            {"id": 10_000_000 + k, "contract_id": contract, "staff_id": staff,
             "customer_id": customer, "purpose": "billing", "channel": channel,
             "opened_at": opened + dt.timedelta(seconds=float(s)),
             "closed_at": None if k == 0 else opened + dt.timedelta(minutes=k)}
            for k, (channel, s) in enumerate(
                zip(list(m.Channel), np.linspace(0, 90, len(m.Channel)), strict=True)
            )
        ]  # fmt: skip
        _INSERT_INTERACTIONS.run(conn, rows)
        fast = [r for r in _interactions(conn) if r[0] >= 10_000_000]
        conn.exec_driver_sql("DELETE FROM interactions WHERE id >= 10000000")
        conn.execute(insert(m.Interaction), rows)
        slow = [r for r in _interactions(conn) if r[0] >= 10_000_000]
        conn.rollback()
    assert fast == slow
    assert len(fast) == len(m.Channel)
    ws.close()
