"""The lake writer's row path: tuples in COLUMNS order give the same files as Event objects."""

from __future__ import annotations

import datetime as dt
import operator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from bpoguard.access import InteractionStart, Verb
from bpoguard.audit import DecisionRecord
from bpoguard.events import lake
from bpoguard.events.schema import COLUMNS, Action, Event, Outcome
from bpoguard.fields import FieldType
from bpoguard.simulate import engine
from bpoguard.simulate.engine import Sim
from bpoguard.store.models import Channel

AT = dt.datetime(2026, 3, 2, 23, 59, 30, tzinfo=dt.UTC)
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))


def _events() -> list[Event]:
    return [
        Event("e-1", AT, "edr", Action.LOGON, Outcome.SUCCESS, actor="AGT-1", src_ip="10.0.0.1"),
        # A minute later is the next UTC day.
        Event(
            "e-2",
            AT + dt.timedelta(minutes=1),
            "hr",
            Action.HR_NOTICE,
            Outcome.SUCCESS,
            raw='{"leaving_date": "2026-03-16"}',
        ),
        # 04:00 in India on the 3rd is 22:30 UTC on the 2nd.
        Event(
            "e-3",
            dt.datetime(2026, 3, 3, 4, 0, tzinfo=IST),
            "guard",
            Action.RECORD_VIEW,
            Outcome.DENIED,
            customer_id=7,
            reasons=["no interaction"],
            fields=["name"],
            canary=True,
            ledger_index=3,
        ),
    ]


def _read(root: Path) -> dict[str, list[dict[str, object]]]:
    return {
        path.parent.name: pq.read_table(path).to_pylist()
        for path in sorted(root.glob("day=*/*.parquet"))
    }


def test_rows_give_the_same_files_as_events(tmp_path: Path) -> None:
    by_event = lake.LakeWriter(tmp_path / "a", "t")
    for event in _events():
        by_event.write(event)
    by_row = lake.LakeWriter(tmp_path / "b", "t")
    by_row.write_rows(operator.attrgetter(*COLUMNS)(e) for e in _events())
    assert by_event.commit() == by_row.commit() == 3

    written = _read(tmp_path / "a")
    assert written == _read(tmp_path / "b")
    assert {day: [r["event_id"] for r in rows] for day, rows in written.items()} == {
        "day=2026-03-02": ["e-1", "e-3"],
        "day=2026-03-03": ["e-2"],
    }


def test_a_row_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    writer = lake.LakeWriter(tmp_path, "t")
    with pytest.raises(ValueError, match="23 values, not 3"):
        writer.write_rows([("e-1", AT, "edr")])
    writer.abort()


def test_rows_flush_when_the_buffer_is_full(tmp_path: Path) -> None:
    writer = lake.LakeWriter(tmp_path, "t", max_buffered=2)
    writer.write_rows(operator.attrgetter(*COLUMNS)(e) for e in _events())
    assert len(list(writer.staging.glob("day=*/*.parquet"))) == 2  # two rows written, one held
    assert writer.commit() == 3


@pytest.mark.parametrize("allowed", [True, False])
def test_a_decisions_row_is_its_events_values(allowed: bool) -> None:
    record = DecisionRecord(
        AT, "AGT-00012", Verb.REVEAL, 123, (FieldType.PHONE, FieldType.NAME), "10.1.2.3",
        "DSK-1", 55, allowed, ("allowed: x", "y"), site_id="site-pune", canary=allowed,
    )  # fmt: skip
    row = record.row(41)
    assert row == operator.attrgetter(*COLUMNS)(record.event(41))
    names = row[COLUMNS.index("fields")]
    assert isinstance(names, list) and [type(v) for v in names] == [str, str]  # plain text


def test_the_simulators_crm_rows_are_the_events_emit_would_write(tmp_path: Path) -> None:
    start = InteractionStart(9, "ctr-x", "AGT-3", 77, "billing", Channel.CALL, AT, "site-manila")
    closed = AT + dt.timedelta(minutes=5)

    by_row = lake.LakeWriter(tmp_path / "rows", "sim")
    sim = Sim(world=None, gateway=None, lake=by_row, seed=5, next_event=11)  # type: ignore[arg-type]
    engine._crm_events(sim, start, closed)
    assert sim.next_event == 13

    by_event = lake.LakeWriter(tmp_path / "events", "sim")
    common: dict[str, Any] = {"source": "crm", "outcome": Outcome.SUCCESS, "actor": "AGT-3",
              "target": "interaction:9", "customer_id": 77, "site_id": "site-manila",
              "interaction_id": 9, "purpose": "billing"}  # fmt: skip
    by_event.write(Event(event_id="sim-5-11", time=AT, action=Action.INTERACTION_OPEN, **common))
    by_event.write(
        Event(event_id="sim-5-12", time=closed, action=Action.INTERACTION_CLOSE, **common)
    )
    by_row.commit()
    by_event.commit()
    assert _read(tmp_path / "rows") == _read(tmp_path / "events")
