"""Export approvals given and revoked are ledger entries, in one transaction with their rows.

Run on SQLite and, where a server is configured, PostgreSQL (the office fixture).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, update

from bpoguard.fields import FieldType
from bpoguard.guard import approvals
from bpoguard.guard._tables import export_approvals
from bpoguard.guard.approvals import ApprovalBook, ApprovalError, ApprovalState
from bpoguard.guard.service import ExportRequest
from bpoguard.ledger.verifier import check_inclusion_files
from bpoguard.store import models as m

if TYPE_CHECKING:
    from conftest import Desk, Office

F = FieldType
FIELDS = (F.NAME, F.PHONE)
REASON = "arrears list for the collections campaign"


def _supervisors(office: Office) -> list[str]:
    with office.store.session() as s:
        return list(
            s.scalars(
                select(m.Staff.id)
                .where(m.Staff.role == m.StaffRole.SUPERVISOR, m.Staff.left.is_(None))
                .order_by(m.Staff.id)
            )
        )


def _book(office: Office) -> ApprovalBook:
    return ApprovalBook(office.store, office.guard, office.ledger)


def _approve(office: Office, desk: Desk, customers: list[int], **changes: object) -> object:
    terms: dict[str, object] = {
        "supervisor_id": _supervisors(office)[0],
        "staff_id": desk.staff,
        "client_id": desk.client,
        "customer_ids": customers,
        "fields": FIELDS,
        "reason": REASON,
        "at": desk.at,
        "valid_for": dt.timedelta(hours=8),
    }
    terms.update(changes)
    return _book(office).approve(**terms)  # type: ignore[arg-type]


def _export(office: Office, desk: Desk, approval: int, minutes: int = 5) -> object:
    request = ExportRequest(desk.staff, approval, desk.at + dt.timedelta(minutes=minutes),
                            desk.ip, desk.device)  # fmt: skip
    return office.guard.export(request)


def test_an_approval_is_a_ledger_entry_naming_who_whom_which_and_until_when(
    office: Office,
) -> None:
    desk = office.desk()
    customers = desk.customers[40:43]
    before = office.ledger.size()
    approval = _approve(office, desk, customers)
    assert isinstance(approval, approvals.ExportApproval)
    assert approval.ledger_index == before
    assert office.ledger.size() == before + 1
    entry = office.ledger.entry(before)
    assert entry == {
        "v": 1,
        "kind": "export_approval",
        "event": "approve",
        "t": desk.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "approval": approval.id,
        "by": _supervisors(office)[0],
        "staff": desk.staff,
        "client": desk.client,
        "customers": customers,
        "fields": ["name", "phone"],
        "reason": REASON,
        "expires": (desk.at + dt.timedelta(hours=8))
        .astimezone(dt.UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    with office.store.engine.connect() as conn:
        stored = approvals.get_approval(conn, approval.id)
    assert stored == approval, "the row keeps the ledger index"


def test_an_approval_entry_carries_no_customer_value(office: Office) -> None:
    desk = office.desk()
    customers = desk.customers[43:45]
    approval = _approve(office, desk, customers)
    assert isinstance(approval, approvals.ExportApproval)
    raw = office.ledger.entry_bytes(approval.ledger_index)  # type: ignore[arg-type]
    with office.store.engine.connect() as conn:
        for customer in customers:
            for value in office.vault.get(conn, customer, FIELDS).values():
                assert value.encode() not in raw


def test_approval_and_revocation_entries_verify_with_the_ledger_tools(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[45:47])
    assert isinstance(approval, approvals.ExportApproval)
    revoked = _book(office).revoke(approval.id, approval.approved_by, "list sent by mistake",
                                   desk.at + dt.timedelta(minutes=2))  # fmt: skip
    assert office.ledger.verify().ok
    checkpoint = office.ledger.checkpoint()
    assert office.ledger.signer is not None
    for index in (approval.ledger_index, revoked.revoked.ledger_index):  # type: ignore[union-attr]
        assert index is not None
        files = office.ledger.inclusion_evidence(index, checkpoint)
        summary = check_inclusion_files(
            files["entry.json"],
            json.loads(files["proof.json"]),
            files["checkpoint.txt"].decode(),
            office.ledger.signer.verifier,
        )
        assert summary.startswith(f"OK: entry {index} is in the log")


def test_a_revoked_approval_exports_nothing_and_its_entry_says_why(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[47:49])
    assert isinstance(approval, approvals.ExportApproval)
    supervisor = approval.approved_by
    before = office.ledger.size()
    at = desk.at + dt.timedelta(minutes=1)
    revoked = _book(office).revoke(approval.id, supervisor, "campaign cancelled", at)
    assert revoked.revoked is not None and revoked.revoked.ledger_index == before
    assert revoked.state(at) is ApprovalState.REVOKED and revoked.used_at is None
    entry = office.ledger.entry(before)
    assert (entry["event"], entry["approval"], entry["by"], entry["reason"]) == (
        "revoke",
        approval.id,
        supervisor,
        "campaign cancelled",
    )
    assert entry["approved_entry"] == approval.ledger_index
    done = _export(office, desk, approval.id)
    assert not done.decision.allowed and done.rows == ()  # type: ignore[attr-defined]
    assert f"denied: approval {approval.id} was revoked by {supervisor}" in (
        done.decision.reasons  # type: ignore[attr-defined]
    )


def test_a_used_approval_cannot_be_revoked_and_nothing_is_recorded(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[49:51])
    assert isinstance(approval, approvals.ExportApproval)
    assert _export(office, desk, approval.id).decision.allowed  # type: ignore[attr-defined]
    before = office.ledger.size()
    with pytest.raises(ApprovalError, match=f"approval {approval.id} is used"):
        _book(office).revoke(approval.id, approval.approved_by, "too late",
                             desk.at + dt.timedelta(minutes=9))  # fmt: skip
    assert office.ledger.size() == before


def test_an_export_spending_the_approval_meanwhile_rolls_the_revocation_back(
    office: Office, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[51:53])
    assert isinstance(approval, approvals.ExportApproval)
    before = office.ledger.size()
    book = _book(office)
    # The revocation reads the row unspent; then, before its update, the row is spent in
    # the database (as an export committed in between would), by a real UPDATE.
    real_get = approvals.get_approval

    def read_then_spend(conn: object, approval_id: int) -> object:
        found = real_get(conn, approval_id)  # type: ignore[arg-type]
        conn.execute(  # type: ignore[attr-defined]
            update(export_approvals)
            .where(export_approvals.c.id == approval_id)
            .values(used_at=desk.at + dt.timedelta(minutes=1), used_ledger_index=before)
        )
        return found

    monkeypatch.setattr(approvals, "get_approval", read_then_spend)
    with pytest.raises(ApprovalError, match="was used just now; not revoked"):
        book.revoke(approval.id, approval.approved_by, "race", desk.at)
    monkeypatch.undo()
    assert office.ledger.size() == before, "the revocation's entry went with its rollback"
    with office.store.engine.connect() as conn:
        kept = approvals.get_approval(conn, approval.id)
    assert kept is not None and kept.revoked is None and kept.used_at is None


def test_only_a_supervisor_revokes(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[53:55])
    assert isinstance(approval, approvals.ExportApproval)
    before = office.ledger.size()
    with pytest.raises(ApprovalError, match="is not a supervisor"):
        _book(office).revoke(approval.id, desk.staff, "mine", desk.at)
    with pytest.raises(ApprovalError, match="needs a reason"):
        _book(office).revoke(approval.id, approval.approved_by, " ", desk.at)
    with pytest.raises(ApprovalError, match="no export approval 987654"):
        _book(office).revoke(987_654, approval.approved_by, "gone", desk.at)
    assert office.ledger.size() == before


def test_another_supervisor_of_the_contract_may_revoke(office: Office) -> None:
    desk = office.desk()
    approval = _approve(office, desk, desk.customers[55:57])
    assert isinstance(approval, approvals.ExportApproval)
    contract = office.guard.directory.contract_for_client(desk.client)
    others = [
        s
        for s in _supervisors(office)[1:]
        if office.guard.directory.staff(s).site_id in contract.allowed_sites
    ]
    assert others, "the simulated world has more than one supervisor at allowed sites"
    revoked = _book(office).revoke(approval.id, others[0], "second opinion", desk.at)
    assert revoked.revoked is not None and revoked.revoked.by == others[0]


def test_a_refused_approval_writes_no_entry_and_no_row(office: Office) -> None:
    desk = office.desk()
    before = office.ledger.size()
    with office.store.engine.connect() as conn:
        rows = len(conn.execute(select(export_approvals.c.id)).all())
    with pytest.raises(ApprovalError, match="is not a supervisor"):
        _approve(office, desk, desk.customers[57:58], supervisor_id=office.desk().staff)
    with pytest.raises(ApprovalError, match="at most 7 days"):
        _approve(office, desk, desk.customers[57:58], valid_for=dt.timedelta(days=8))
    assert office.ledger.size() == before
    with office.store.engine.connect() as conn:
        assert len(conn.execute(select(export_approvals.c.id)).all()) == rows


def test_approvals_are_listed_by_state(office: Office) -> None:
    desk = office.desk()
    book = _book(office)
    pending = _approve(office, desk, desk.customers[60:61])
    used = _approve(office, desk, desk.customers[61:62])
    revoked = _approve(office, desk, desk.customers[62:63])
    expired = _approve(office, desk, desk.customers[63:64], valid_for=dt.timedelta(minutes=2))
    ids = [a.id for a in (pending, used, revoked, expired)]  # type: ignore[attr-defined]
    assert _export(office, desk, ids[1]).decision.allowed  # type: ignore[attr-defined]
    book.revoke(ids[2], _supervisors(office)[0], "not needed", desk.at + dt.timedelta(minutes=1))
    at = desk.at + dt.timedelta(minutes=10)
    with office.store.engine.connect() as conn:
        states = {
            state: [a.id for a in approvals.list_approvals(conn, at, state=state,
                                                           staff_id=desk.staff)]
            for state in ApprovalState
        }  # fmt: skip
        every = approvals.list_approvals(conn, at, staff_id=desk.staff)
    assert states == {
        ApprovalState.PENDING: [ids[0]],
        ApprovalState.USED: [ids[1]],
        ApprovalState.REVOKED: [ids[2]],
        ApprovalState.EXPIRED: [ids[3]],
    }
    assert [a.id for a in every] == ids[::-1], "newest first"
    document = every[-1].as_json(at)
    assert document["state"] == "pending" and document["ledger_index"] is not None


def test_a_row_from_before_approvals_were_entries_still_reads(office: Office) -> None:
    desk = office.desk()
    with office.store.engine.begin() as conn:  # as rows were written before: no ledger entry
        old = approvals.record_approval(conn, desk.client, desk.staff, _supervisors(office)[0],
                                        desk.customers[65:66], FIELDS, REASON, desk.at,
                                        dt.timedelta(hours=8))  # fmt: skip
    with office.store.engine.connect() as conn:
        stored = conn.execute(
            select(export_approvals.c.fields).where(export_approvals.c.id == old.id)
        ).scalar_one()
        found = approvals.get_approval(conn, old.id)
    assert stored == ["name", "phone"]
    assert found is not None and found.fields == FIELDS and found.ledger_index is None
    assert _export(office, desk, old.id).decision.allowed  # type: ignore[attr-defined]


def test_an_approval_given_through_the_guard_itself_is_a_ledger_entry(office: Office) -> None:
    desk = office.desk()
    before = office.ledger.size()
    given = office.guard.approve_export(_supervisors(office)[0], desk.staff, desk.client,
                                        desk.customers[70:72], FIELDS, REASON, desk.at)  # fmt: skip
    assert given.ledger_index == before and office.ledger.size() == before + 1
    entry = office.ledger.entry(before)
    assert entry["kind"] == approvals.ENTRY_KIND and entry["event"] == "approve"
    assert entry["approval"] == given.id and entry["customers"] == list(desk.customers[70:72])
    with office.store.engine.connect() as conn:
        stored = approvals.get_approval(conn, given.id)
    assert stored is not None and stored.ledger_index == before
