"""A decision reaches the event lake only once its transaction has committed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from sqlalchemy import Connection

from bpoguard.audit import AuditSink, DecisionRecord
from bpoguard.events.lake import LakeWriter
from bpoguard.guard.service import Guard

if TYPE_CHECKING:
    from conftest import Office


class _FailingListener:
    """A listener whose write fails, so the decision's transaction rolls back."""

    def on_decision(self, conn: Connection, record: DecisionRecord, ledger_index: int) -> None:
        raise RuntimeError("the alert store is gone")


def _rows(office: Office, event_id: str) -> int:
    lake = ds.dataset(office.ws.settings.lake_dir, format="parquet", partitioning="hive")
    return int(lake.count_rows(filter=pc.field("event_id") == event_id))


def test_a_decision_rolled_back_leaves_no_lake_row_and_its_index_one_row(office: Office) -> None:
    desk = office.desk()
    call = office.call(desk, desk.customers[0])
    lake = LakeWriter(office.ws.settings.lake_dir, source="guard")
    failing = Guard(
        office.store, office.vault, AuditSink(office.ledger, lake, listeners=[_FailingListener()])
    )
    before = office.ledger.size()

    with pytest.raises(RuntimeError):
        failing.view(office.ask(desk, interaction_id=call))
    assert office.ledger.size() == before  # rolled back, entry and all

    working = Guard(office.store, office.vault, AuditSink(office.ledger, lake))
    decision = working.view(office.ask(desk, interaction_id=call)).decision
    lake.commit()

    assert decision.allowed and decision.ledger_index == before  # the index is reused
    assert _rows(office, f"ledger-{before}") == 1  # only the committed decision's row
