"""Exports: only with a supervisor's approval, once, citing it; everything else denied."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from bpoguard.fields import FieldType
from bpoguard.guard import approvals, canary
from bpoguard.guard.approvals import ApprovalError
from bpoguard.guard.canary import PlantOptions
from bpoguard.guard.masking import mask
from bpoguard.guard.service import ExportRequest
from bpoguard.store import models as m

if TYPE_CHECKING:
    from conftest import Desk, Office

F = FieldType
FIELDS = (F.NAME, F.PHONE)


def _supervisor(office: Office) -> str:
    with office.store.session() as s:
        found = s.scalars(
            select(m.Staff.id).where(m.Staff.role == m.StaffRole.SUPERVISOR).order_by(m.Staff.id)
        ).first()
    assert found is not None
    return found


def _approve(office: Office, desk: Desk, customers: list[int], **changes: object) -> int:
    terms: dict[str, object] = {
        "supervisor_id": _supervisor(office),
        "staff_id": desk.staff,
        "client_id": desk.client,
        "customer_ids": customers,
        "fields": FIELDS,
        "reason": "arrears list for the collections campaign",
        "at": desk.at,
    }
    terms.update(changes)
    return office.guard.approve_export(**terms).id  # type: ignore[arg-type]


def _export(desk: Desk, approval: int, **changes: object) -> ExportRequest:
    terms: dict[str, object] = {
        "staff_id": desk.staff,
        "approval_id": approval,
        "at": desk.at + dt.timedelta(minutes=5),
        "source_ip": desk.ip,
        "device_id": desk.device,
    }
    terms.update(changes)
    return ExportRequest(**terms)  # type: ignore[arg-type]


def test_an_approved_export_gives_masked_rows_and_cites_the_approval(office: Office) -> None:
    desk = office.desk()
    customers = desk.customers[20:24]
    approval = _approve(office, desk, customers)
    done = office.guard.export(_export(desk, approval))
    assert done.decision.allowed, done.decision.reasons
    supervisor = _supervisor(office)
    assert done.decision.reasons[-1] == (
        f"allowed: under approval {approval} by {supervisor} of 4 customers"
    )
    assert [row.customer_id for row in done.rows] == customers
    with office.store.engine.connect() as conn:
        for row in done.rows:
            clear = office.vault.get(conn, row.customer_id, FIELDS)
            assert row.values == {f: mask(f, clear[f]) for f in FIELDS}
        shown = approvals.disclosures(conn, staff_id=desk.staff)
    assert [d.customer_id for d in shown] == customers
    assert {d.ledger_index for d in shown} == {done.decision.ledger_index}
    assert done.approval is not None and done.approval.used_at is not None
    entry = office.ledger.entry(done.decision.ledger_index)  # type: ignore[arg-type]
    assert (entry["verb"], entry["decision"], entry["fields"]) == (
        "export",
        "allow",
        ["name", "phone"],
    )


def test_an_approval_is_spent_by_one_export(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[24:26])
    assert office.guard.export(_export(desk, approval)).decision.allowed
    again = office.guard.export(_export(desk, approval, at=desk.at + dt.timedelta(minutes=6)))
    assert not again.decision.allowed and again.rows == ()
    assert f"denied: approval {approval} was already used" in again.decision.reasons


def test_an_export_by_anyone_else_than_the_approved_person_is_denied(office: Office) -> None:
    desk, other = office.desk(), office.desk()
    approval = _approve(office, desk, desk.customers[26:28])
    taken = office.guard.export(_export(other, approval))
    assert not taken.decision.allowed and taken.rows == ()
    assert f"denied: approval {approval} is for {desk.staff}, not {other.staff}" in (
        taken.decision.reasons
    )
    assert "denied: export needs a supervisor's approval" in taken.decision.reasons


def test_an_expired_approval_exports_nothing(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[28:30], valid_for=dt.timedelta(minutes=1))
    late = office.guard.export(_export(desk, approval))
    assert not late.decision.allowed
    assert any(f"approval {approval} expired at" in r for r in late.decision.reasons)


def test_an_approved_export_from_outside_the_premises_is_still_denied(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[30:32])
    away = office.guard.export(_export(desk, approval, source_ip="198.51.100.23"))
    assert not away.decision.allowed and away.rows == ()
    assert any("198.51.100.23 is outside the premises" in r for r in away.decision.reasons)
    with office.store.engine.connect() as conn:
        kept = approvals.get_approval(conn, approval)
    assert kept is not None and kept.used_at is None, "a denied export does not spend it"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"supervisor_id": "agent"}, "is not a supervisor"),
        ({"supervisor_id": "self"}, "is not a supervisor"),
        ({"customer_ids": []}, "between 1 and 10000 customers"),
        ({"customer_ids": "other client"}, "is not a customer of org-albion"),
        ({"fields": ()}, "names the fields to export"),
        ({"reason": "  "}, "needs a reason"),
        ({"valid_for": dt.timedelta(days=30)}, "at most 7 days"),
        ({"staff_id": "NOBODY"}, "unknown staff member"),
    ],
)
def test_bad_approvals_are_refused(office: Office, change: dict[str, object], message: str) -> None:
    desk = office.desk()
    terms = dict(change)
    if terms.get("supervisor_id") == "agent":
        terms["supervisor_id"] = office.desk().staff
    if terms.get("supervisor_id") == "self":
        terms["supervisor_id"] = desk.staff
    if terms.get("customer_ids") == "other client":
        terms["customer_ids"] = [office.desk("org-hudson").customers[0]]
    with pytest.raises(Exception, match=message) as raised:
        _approve(office, desk, desk.customers[32:34], **terms)
    assert isinstance(raised.value, ApprovalError) or "unknown staff" in message


def test_a_supervisor_cannot_approve_their_own_export(office: Office) -> None:
    supervisor = _supervisor(office)
    desk = office.desk()
    with pytest.raises(ApprovalError, match="cannot approve their own export"):
        _approve(office, desk, desk.customers[34:35], staff_id=supervisor)


def test_an_unknown_approval_is_bad_input(office: Office) -> None:
    desk = office.desk()
    with pytest.raises(Exception, match="no export approval 987654"):
        office.guard.export(_export(desk, 987_654))


def test_exporting_a_canary_is_a_touch_naming_the_agent(office: Office) -> None:
    desk = office.desk()
    with office.store.engine.begin() as conn:
        (planted,) = canary.plant(
            conn, office.vault, desk.client, PlantOptions(count=1, seed=9),
            desk.at - dt.timedelta(days=1),
        )  # fmt: skip
    approval = _approve(office, desk, [desk.customers[36], planted.customer_id])
    done = office.guard.export(_export(desk, approval))
    assert done.decision.allowed
    with office.store.engine.connect() as conn:
        stored = canary.get_canary(conn, planted.customer_id)
    assert stored.touched_by == (desk.staff,)
    assert stored.exposures[-1].kind == "export"
    assert stored.exposures[-1].ledger_index == done.decision.ledger_index
