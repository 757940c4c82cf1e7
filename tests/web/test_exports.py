"""Export approvals and exports over HTTP, through the real guard, store and ledger."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bpoguard.fields import FieldType
from bpoguard.guard.approvals import MAX_EXPORT
from bpoguard.guard.directory import Directory
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.masking import mask
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.workspace import Workspace
from web._world import Desk, Web, headers

APPROVALS = "/api/v1/exports/approvals"
FIELDS = ["name", "phone"]
OUTSIDE = "198.51.100.23"


@dataclass
class Supervisor:
    """A supervisor of a site the contract allows, with a token, at an on-site address."""

    staff: str
    ip: str
    token: str = field(default="", repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _supervisors(web: Web) -> list[Supervisor]:
    with Workspace.open(web.home) as ws, ws.store.engine.begin() as conn:
        directory = Directory.load(conn)
        contract = directory.contract_for_client("org-albion")
        ids = conn.scalars(
            select(m.Staff.id)
            .where(m.Staff.role == m.StaffRole.SUPERVISOR, m.Staff.left.is_(None),
                   m.Staff.site_id.in_(list(contract.allowed_sites)))
            .order_by(m.Staff.id)
        ).all()  # fmt: skip
        found = []
        for staff in ids:
            site = directory.site(directory.staff(staff).site_id)
            assert site is not None
            _, token = credentials.create_token(conn, web.clock.at, staff_id=staff)
            found.append(Supervisor(staff, str(site.networks[0].network_address + 50), token))
    return found


def _approve(web: Web, boss: Supervisor, desk: Desk, customers: list[int], **kw: Any) -> Any:
    body = {"staff_id": desk.staff, "client_id": "org-albion", "customer_ids": customers,
            "fields": FIELDS, "reason": "arrears campaign", "valid_for_minutes": 120}  # fmt: skip
    body.update(kw.pop("body", {}))
    return web.api.post(APPROVALS, peer=kw.pop("peer", boss.ip), headers=boss.headers(),
                        json=body, **kw)  # fmt: skip


def _export(web: Web, desk: Desk, approval: int, **kw: Any) -> Any:
    return web.api.post("/api/v1/exports", peer=kw.pop("peer", desk.ip), headers=headers(desk),
                        json={"approval_id": approval}, **kw)  # fmt: skip


def _entry(web: Web, index: int) -> dict[str, Any]:
    with Workspace.open(web.home) as ws:
        return Ledger.for_workspace(ws).entry(index)


def _size(web: Web) -> int:
    with Workspace.open(web.home) as ws:
        return Ledger.for_workspace(ws).size()


def _plain(home: Path, customer: int, field_: FieldType) -> str:
    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        return vault.get(conn, customer, [field_])[field_]


def test_a_supervisor_approves_and_the_agent_exports_masked_rows_once(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    desk = web.desk()
    boss = _supervisors(web)[0]
    customers = desk.customers[100:103]
    with caplog.at_level(logging.DEBUG):
        given = _approve(web, boss, desk, customers)
        assert given.status_code == 201, given.text
        approval = given.json()
        assert approval["state"] == "pending" and approval["approved_by"] == boss.staff
        entry = _entry(web, approval["ledger_index"])
        assert (entry["event"], entry["by"], entry["staff"], entry["customers"]) == (
            "approve", boss.staff, desk.staff, customers,
        )  # fmt: skip

        mine = web.api.get(APPROVALS, peer=desk.ip, headers=headers(desk),
                           params={"state": "pending"})  # fmt: skip
        assert mine.status_code == 200, mine.text
        assert approval["id"] in [a["id"] for a in mine.json()["approvals"]]

        done = _export(web, desk, approval["id"])
        assert done.status_code == 200, done.text
        body = done.json()
    assert [r["customer_id"] for r in body["rows"]] == customers
    for row in body["rows"]:
        for name in FIELDS:
            clear = _plain(web.home, row["customer_id"], FieldType(name))
            assert row["values"][name] == mask(FieldType(name), clear)
            assert clear not in caplog.text
        phone = _plain(web.home, row["customer_id"], FieldType.PHONE)
        assert phone not in done.text, "masked: the number itself never leaves"
    exported = _entry(web, body["ledger_index"])
    assert (exported["verb"], exported["decision"]) == ("export", "allow")

    again = _export(web, desk, approval["id"])
    assert again.status_code == 403
    assert f"denied: approval {approval['id']} was already used" in again.json()["reasons"]
    shown = web.api.get(f"{APPROVALS}/{approval['id']}", peer=boss.ip, headers=boss.headers())
    assert shown.json()["state"] == "used"
    assert shown.json()["used_ledger_index"] == body["ledger_index"]


def test_a_revoked_approval_exports_nothing_and_cannot_be_revoked_twice(web: Web) -> None:
    desk = web.desk()
    boss = _supervisors(web)[0]
    approval = _approve(web, boss, desk, desk.customers[103:105]).json()
    url = f"{APPROVALS}/{approval['id']}/revoke"
    revoked = web.api.post(url, peer=boss.ip, headers=boss.headers(),
                           json={"reason": "campaign cancelled"})  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    record = revoked.json()["revoked"]
    assert revoked.json()["state"] == "revoked" and record["by"] == boss.staff
    entry = _entry(web, record["ledger_index"])
    assert (entry["event"], entry["approval"], entry["reason"]) == (
        "revoke", approval["id"], "campaign cancelled",
    )  # fmt: skip
    denied = _export(web, desk, approval["id"])
    assert denied.status_code == 403
    problem = denied.json()
    assert f"denied: approval {approval['id']} was revoked by {boss.staff}" in problem["reasons"]
    assert _entry(web, problem["ledger_index"])["decision"] == "deny"
    twice = web.api.post(url, peer=boss.ip, headers=boss.headers(), json={"reason": "again"})
    assert twice.status_code == 409


def test_only_a_supervisor_on_site_approves_and_nothing_is_recorded_otherwise(web: Web) -> None:
    desk, other = web.desk(), web.desk()
    boss = _supervisors(web)[0]
    before = _size(web)
    by_agent = web.api.post(APPROVALS, peer=other.ip, headers=headers(other), json={
        "staff_id": desk.staff, "client_id": "org-albion", "customer_ids": desk.customers[:1],
        "fields": FIELDS, "reason": "mine"})  # fmt: skip
    assert by_agent.status_code == 403
    assert "is not a supervisor" in by_agent.json()["message"]
    away = _approve(web, boss, desk, desk.customers[105:106], peer=OUTSIDE)
    assert away.status_code == 403
    assert f"source {OUTSIDE} is outside the premises" in away.json()["message"]
    too_long = _approve(web, boss, desk, desk.customers[105:106],
                        body={"valid_for_minutes": 8 * 24 * 60})  # fmt: skip
    assert too_long.status_code == 422
    self_approved = _approve(web, boss, desk, desk.customers[105:106],
                             body={"staff_id": boss.staff})  # fmt: skip
    assert self_approved.status_code == 422
    assert "cannot approve their own export" in self_approved.json()["message"]
    assert _size(web) == before


def test_others_neither_see_nor_spend_an_approval(web: Web) -> None:
    desk, other = web.desk(), web.desk()
    boss = _supervisors(web)[0]
    approval = _approve(web, boss, desk, desk.customers[106:107]).json()
    hidden = web.api.get(f"{APPROVALS}/{approval['id']}", peer=other.ip, headers=headers(other))
    assert hidden.status_code == 404
    theirs = web.api.get(APPROVALS, peer=other.ip, headers=headers(other))
    assert approval["id"] not in [a["id"] for a in theirs.json()["approvals"]]
    taken = _export(web, other, approval["id"])
    assert taken.status_code == 403
    assert (
        f"denied: approval {approval['id']} is for {desk.staff}, not {other.staff}"
        in (taken.json()["reasons"])
    )
    still = web.api.get(f"{APPROVALS}/{approval['id']}", peer=desk.ip, headers=headers(desk))
    assert still.json()["state"] == "pending"


def test_an_export_from_outside_the_premises_is_denied_and_does_not_spend(web: Web) -> None:
    desk = web.desk()
    boss = _supervisors(web)[0]
    approval = _approve(web, boss, desk, desk.customers[107:108]).json()
    away = _export(web, desk, approval["id"], peer=OUTSIDE)
    assert away.status_code == 403
    assert any(f"{OUTSIDE} is outside the premises" in r for r in away.json()["reasons"])
    assert _export(web, desk, approval["id"]).status_code == 200


def test_unknown_approvals_and_bad_bodies_are_clear_4xx(web: Web) -> None:
    desk = web.desk()
    boss = _supervisors(web)[0]
    assert _export(web, desk, 987_654).status_code == 404
    unknown = web.api.post(f"{APPROVALS}/987654/revoke", peer=boss.ip, headers=boss.headers(),
                           json={"reason": "gone"})  # fmt: skip
    assert unknown.status_code == 404
    extra = _approve(web, boss, desk, desk.customers[:1], body={"approver": boss.staff})
    assert extra.status_code == 422
    no_token = web.api.post("/api/v1/exports", peer=desk.ip, json={"approval_id": 1})
    assert no_token.status_code == 401


def test_an_approval_body_has_room_for_its_largest_list_and_no_more(web: Web) -> None:
    desk = web.desk()
    boss = _supervisors(web)[0]
    settings = web.app.state.runtime.settings
    largest = list(range(10_000_000_000 - MAX_EXPORT, 10_000_000_000))
    body = {"staff_id": desk.staff, "client_id": "org-albion", "customer_ids": largest,
            "fields": FIELDS, "reason": "arrears campaign"}  # fmt: skip
    assert len(json.dumps(body)) > settings.max_body, "the list alone is over the default cap"
    before = _size(web)
    answered = _approve(web, boss, desk, largest)
    # Read and judged on its terms (none of these ids is a customer of the client), not refused
    # for its size.
    assert answered.status_code == 422, answered.text
    assert "is not a customer of org-albion" in answered.json()["message"]
    assert _size(web) == before
    over = _approve(web, boss, desk, largest, body={"reason": "x" * settings.max_approval_body})
    assert over.status_code == 413 and over.json()["error"] == "body_too_large"
    elsewhere = web.api.post("/api/v1/exports", peer=desk.ip, headers=headers(desk),
                             json={"approval_id": 1, "pad": "x" * settings.max_body})  # fmt: skip
    assert elsewhere.status_code == 413, "every other route keeps the small cap"
