"""Export approvals and exports over HTTP on PostgreSQL: the same answers and entries as SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bpoguard import workspace
from bpoguard.guard.directory import Directory
from bpoguard.ledger import Ledger
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.web._settings import WebSettings
from bpoguard.web.app import create_app
from bpoguard.workspace import Workspace
from web._world import Api, Clock, desks, headers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_approve_export_and_revoke_on_postgresql(tmp_path: Path, pg_db: str) -> None:
    home = tmp_path / "ws"
    workspace.init(home, db=pg_db)
    with Workspace.open(home) as ws:
        simulate(ws, SimConfig(agents=24, customers=1_000, days=1, scenarios="none", guard=True))
    desk = desks(home)[0]
    app = create_app(WebSettings(home=home, clock=Clock(desk.at)))
    try:
        with Workspace.open(home) as ws, ws.store.engine.begin() as conn:
            directory = Directory.load(conn)
            sites = list(directory.contract_for_client("org-albion").allowed_sites)
            boss = conn.scalars(
                select(m.Staff.id)
                .where(m.Staff.role == m.StaffRole.SUPERVISOR, m.Staff.left.is_(None),
                       m.Staff.site_id.in_(sites))
                .order_by(m.Staff.id)
            ).first()  # fmt: skip
            assert boss is not None
            site = directory.site(directory.staff(boss).site_id)
            assert site is not None
            _, boss_token = credentials.create_token(conn, desk.at, staff_id=boss)
            _, desk.token = credentials.create_token(conn, desk.at, staff_id=desk.staff)
            _, desk.device_credential = credentials.enrol_device(conn, desk.device, desk.at)
        boss_ip = str(site.networks[0].network_address + 50)
        boss_headers = {"Authorization": f"Bearer {boss_token}"}
        api = Api(app, desk.ip)
        terms = {"staff_id": desk.staff, "client_id": "org-albion", "fields": ["name"],
                 "reason": "arrears campaign"}  # fmt: skip
        first = api.post("/api/v1/exports/approvals", peer=boss_ip, headers=boss_headers,
                         json={**terms, "customer_ids": desk.customers[:2]})  # fmt: skip
        second = api.post("/api/v1/exports/approvals", peer=boss_ip, headers=boss_headers,
                          json={**terms, "customer_ids": desk.customers[2:3]})  # fmt: skip
        assert first.status_code == second.status_code == 201, first.text
        done = api.post("/api/v1/exports", headers=headers(desk),
                        json={"approval_id": first.json()["id"]})  # fmt: skip
        assert done.status_code == 200, done.text
        assert [r["customer_id"] for r in done.json()["rows"]] == desk.customers[:2]
        url = f"/api/v1/exports/approvals/{second.json()['id']}/revoke"
        revoked = api.post(url, peer=boss_ip, headers=boss_headers, json={"reason": "not needed"})
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        refused = api.post("/api/v1/exports", headers=headers(desk),
                           json={"approval_id": second.json()["id"]})  # fmt: skip
        assert refused.status_code == 403 and "was revoked" in refused.text
        with Workspace.open(home) as ws:
            ledger = Ledger.for_workspace(ws)
            events = [
                ledger.entry(first.json()["ledger_index"])["event"],
                ledger.entry(revoked.json()["revoked"]["ledger_index"])["event"],
            ]
            assert events == ["approve", "revoke"]
            assert ledger.verify().ok
    finally:
        app.state.runtime.close()
