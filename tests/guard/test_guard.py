"""The guard's decisions on a simulated BPO, end to end: facts, policies, budgets, ledger."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bpoguard import workspace
from bpoguard.access import AccessRequest, InteractionStart, Verb
from bpoguard.audit import AuditSink
from bpoguard.events.lake import LakeWriter
from bpoguard.fields import FieldType
from bpoguard.guard.directory import shift_window
from bpoguard.guard.service import Guard
from bpoguard.ledger import Ledger
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

DAY = dt.date(2026, 3, 10)  # a Tuesday
_ids = itertools.count(50_000_000)


@dataclass
class Desk:
    """An agent at their desk, in shift, with a customer of their client to serve."""

    staff: str
    device: str
    ip: str
    at: dt.datetime
    contract: str
    purpose: str
    fields: tuple[FieldType, ...]
    revealable: tuple[FieldType, ...]
    customers: list[int]


def _world(home: Path, db: str | None = None, **budgets: int) -> None:
    workspace.init(home, db=db)
    with Workspace.open(home) as ws:
        simulate(ws, SimConfig(agents=36, customers=1_000, days=1, scenarios="none"))
        if budgets:
            with ws.store.engine.begin() as conn:
                conn.execute(update(m.Contract).values(**budgets))


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory, store_db: str | None) -> Path:
    """A simulated BPO on SQLite and, when configured, PostgreSQL (store_db in conftest)."""
    home = tmp_path_factory.mktemp("guard") / "ws"
    _world(home, store_db)
    return home


def _guard(home: Path) -> Iterator[tuple[Guard, Ledger]]:
    with Workspace.open(home) as ws:
        ledger = Ledger.for_workspace(ws)
        lake = LakeWriter(ws.settings.lake_dir, source="guard")
        guard = Guard(ws.store, None, AuditSink(ledger, lake))
        yield guard, ledger
        lake.commit()


@pytest.fixture
def guard(shared_home: Path) -> Iterator[tuple[Guard, Ledger]]:
    yield from _guard(shared_home)


_taken: set[tuple[str, str]] = set()  # (database, staff id): one desk per agent per world


def _desk(guard: Guard, client: str = "org-albion") -> Desk:
    """A fresh agent of the client (one no other test used), at their desk mid-shift."""
    db = str(guard._store.url)
    with guard._store.session() as s:
        agents = s.execute(
            select(m.Staff.id, m.Staff.site_id, m.Staff.shift, m.Device.id)
            .join(m.Device, m.Device.holder_id == m.Staff.id)
            .join(m.Site, m.Site.id == m.Staff.site_id)
            .where(m.Staff.role == m.StaffRole.AGENT, m.Device.kind == m.DeviceKind.DESKTOP)
            .order_by(m.Staff.id)
        ).all()
        contract = s.scalars(select(m.Contract).where(m.Contract.client_id == client)).one()
        purpose = s.scalars(select(m.Purpose).where(m.Purpose.contract_id == contract.id)).first()
        customers = list(s.scalars(select(m.Customer.id).where(m.Customer.client_id == client)))
    staff, site_id, shift, device = next(
        a for a in agents if (db, a[0]) not in _taken and a[1] in contract.allowed_sites
    )
    _taken.add((db, staff))
    site = guard.directory.site(site_id)
    assert site is not None and purpose is not None
    start, _ = site.shifts[shift]
    local = dt.datetime.combine(DAY, start, tzinfo=site.timezone) + dt.timedelta(hours=2)
    return Desk(
        staff=staff,
        device=device,
        ip=str(site.networks[0].network_address + 77),
        at=local.astimezone(dt.UTC),
        contract=contract.id,
        purpose=purpose.name,
        fields=tuple(FieldType(f) for f in purpose.fields),
        revealable=tuple(FieldType(f) for f in purpose.revealable),
        customers=customers,
    )


def _call(guard: Guard, desk: Desk, customer: int, purpose: str | None = None) -> int:
    interaction = next(_ids)
    guard.open_interaction(InteractionStart(interaction, desk.contract, desk.staff, customer,
                                            purpose or desk.purpose, m.Channel.CALL, desk.at))  # fmt: skip
    return interaction


def _ask(desk: Desk, verb: Verb = Verb.VIEW, **changes: object) -> AccessRequest:
    request = {
        "staff_id": desk.staff,
        "verb": verb,
        "customer_id": desk.customers[0],
        "fields": desk.fields,
        "at": desk.at + dt.timedelta(minutes=1),
        "source_ip": desk.ip,
        "device_id": desk.device,
        "interaction_id": None,
        "reason": None,
    }
    request.update(changes)
    return AccessRequest(**request)  # type: ignore[arg-type]


def test_view_in_an_open_call_at_the_desk_in_shift_is_allowed_and_in_the_ledger(guard) -> None:  # type: ignore[no-untyped-def]
    g, ledger = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    decision = g.request(_ask(desk, interaction_id=call))
    assert decision.allowed, decision.reasons
    assert decision.reasons[0].startswith("allowed: view within interaction")
    entry = ledger.entry(decision.ledger_index)  # type: ignore[arg-type]
    assert (entry["staff"], entry["customer"], entry["decision"]) == (
        desk.staff, desk.customers[0], "allow")  # fmt: skip


def test_view_without_an_open_call_is_denied_and_still_recorded(guard) -> None:  # type: ignore[no-untyped-def]
    g, ledger = guard
    desk = _desk(g)
    before = ledger.size()
    decision = g.request(_ask(desk))
    assert not decision.allowed
    assert f"denied: no open interaction with customer {desk.customers[0]}" in decision.reasons
    assert ledger.size() == before + 1
    assert ledger.entry(before)["decision"] == "deny"


def test_view_of_another_customer_than_the_callers_is_denied(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    decision = g.request(_ask(desk, interaction_id=call, customer_id=desk.customers[1]))
    assert not decision.allowed


def test_a_request_from_outside_the_premises_names_the_address_and_the_site(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    decision = g.request(_ask(desk, interaction_id=call, source_ip="203.0.113.7"))
    assert not decision.allowed
    site = g.directory.staff(desk.staff).site_id
    assert any("203.0.113.7" in r and str(site) in r for r in decision.reasons), decision.reasons


def test_a_closed_call_gives_no_more_access(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    g.close_interaction(call, desk.at + dt.timedelta(seconds=30))
    assert not g.request(_ask(desk, interaction_id=call)).allowed


def test_outside_the_shift_is_denied_with_reason(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    later = desk.at + dt.timedelta(hours=10)
    staff = g.directory.staff(desk.staff)
    site = g.directory.site(staff.site_id)
    assert site is not None and shift_window(site, staff.shift, later) is None
    decision = g.request(_ask(desk, interaction_id=call, at=later))
    assert not decision.allowed
    assert any("outside their shift" in r for r in decision.reasons)


def test_a_leaver_is_denied_everything(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    with g._store.engine.begin() as conn:
        conn.execute(update(m.Staff).where(m.Staff.id == desk.staff)
                     .values(left=DAY - dt.timedelta(days=2)))  # fmt: skip
    g.refresh()
    decision = g.request(_ask(desk, interaction_id=call))
    assert not decision.allowed
    assert any(f"{desk.staff} left on" in r for r in decision.reasons)


def test_a_device_reported_lost_or_someone_elses_is_refused(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk, other = _desk(g), _desk(g)
    call = _call(g, desk, desk.customers[0])
    decision = g.request(_ask(desk, interaction_id=call, device_id=other.device))
    assert any("is not issued to" in r for r in decision.reasons)
    with g._store.engine.begin() as conn:
        conn.execute(update(m.Device).where(m.Device.id == desk.device)
                     .values(status=m.DeviceStatus.LOST))  # fmt: skip
    g.refresh()
    decision = g.request(_ask(desk, interaction_id=call))
    assert any("reported lost" in r for r in decision.reasons)


def test_reveal_needs_a_revealable_field_and_a_reason(guard) -> None:  # type: ignore[no-untyped-def]
    g, _ = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    assert desk.revealable, "the purpose used here must allow revealing something"
    field = desk.revealable[0]
    hidden = next(f for f in desk.fields if f not in desk.revealable)
    no_reason = g.request(_ask(desk, Verb.REVEAL, interaction_id=call, fields=(field,)))
    assert any("needs a reason" in r for r in no_reason.reasons)
    not_allowed = g.request(_ask(desk, Verb.REVEAL, interaction_id=call, fields=(hidden,),
                                 reason="caller asked"))  # fmt: skip
    assert any(f"does not allow revealing {hidden.value}" in r for r in not_allowed.reasons)
    ok = g.request(_ask(desk, Verb.REVEAL, interaction_id=call, fields=(field,),
                        reason="caller asked"))  # fmt: skip
    assert ok.allowed, ok.reasons


def test_an_unknown_customer_is_denied_and_recorded(guard) -> None:  # type: ignore[no-untyped-def]
    g, ledger = guard
    desk = _desk(g)
    decision = g.request(_ask(desk, customer_id=987_654_321))
    assert decision.reasons == ("denied: unknown customer 987654321",)
    assert ledger.entry(decision.ledger_index)["decision"] == "deny"  # type: ignore[arg-type]


def test_the_shift_budget_of_distinct_customers_runs_out(tmp_path: Path) -> None:
    _world(tmp_path / "ws", records_per_shift=3, records_per_hour=50)
    for g, _ in _guard(tmp_path / "ws"):
        desk = _desk(g)
        decisions = []
        for customer in desk.customers[:4]:
            call = _call(g, desk, customer)
            decisions.append(g.request(_ask(desk, interaction_id=call, customer_id=customer)))
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert any("shift budget of 3 distinct customers" in r for r in decisions[3].reasons)
        # The same customer again does not count twice.
        again = _call(g, desk, desk.customers[0])
        assert g.request(_ask(desk, interaction_id=again)).allowed


def test_decisions_never_put_a_value_in_the_ledger(guard) -> None:  # type: ignore[no-untyped-def]
    g, ledger = guard
    desk = _desk(g)
    call = _call(g, desk, desk.customers[0])
    decision = g.request(_ask(desk, interaction_id=call))
    entry = ledger.entry(decision.ledger_index)  # type: ignore[arg-type]
    assert set(entry) == {"v", "kind", "t", "staff", "verb", "customer", "fields", "interaction",
                          "device", "ip", "site", "decision", "reasons"}  # fmt: skip
    assert all(isinstance(f, str) and f in FieldType.__members__.values() for f in entry["fields"])
