"""Guard.bound: many decisions in one transaction, their ledger entries appended together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpoguard.audit import AuditSink
from bpoguard.guard.canary import CanaryListener

if TYPE_CHECKING:
    from conftest import Office


def test_views_in_one_transaction_commit_their_entries_together(office: Office) -> None:
    desks = [office.desk() for _ in range(3)]
    calls = [office.call(desk, desk.customers[0]) for desk in desks]
    batching = AuditSink(office.ledger, office.lake, batch=100, listeners=[CanaryListener()])
    before = office.ledger.size()
    with office.store.engine.begin() as conn:
        bound = office.guard.bound(conn, batching)
        seen = [
            bound.view(office.ask(d, interaction_id=c)) for d, c in zip(desks, calls, strict=True)
        ]
        assert all(s.decision.allowed for s in seen), [s.decision.reasons for s in seen]
        assert all(s.decision.ledger_index is None for s in seen), "buffered until flush"
        assert all(s.values for s in seen)
        bound.flush()
    assert office.ledger.size() == before + 3
    staff = [office.ledger.entry(before + i)["staff"] for i in range(3)]
    assert staff == [d.staff for d in desks]


def test_a_rolled_back_group_leaves_no_entry(office: Office) -> None:
    desk = office.desk()
    call = office.call(desk, desk.customers[0])
    before = office.ledger.size()
    with office.store.engine.connect() as conn:
        transaction = conn.begin()
        bound = office.guard.bound(conn)  # the guard's own sink: appends at once, in conn
        decision = bound.view(office.ask(desk, interaction_id=call)).decision
        assert decision.ledger_index == before
        transaction.rollback()
    assert office.ledger.size() == before
    assert office.guard.view(office.ask(desk, interaction_id=call)).decision.ledger_index == before
