"""The web layer on PostgreSQL: the same tokens, decisions and refusals as on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from bpoguard import workspace
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.web import credentials
from bpoguard.web._settings import WebSettings
from bpoguard.web.app import create_app
from bpoguard.workspace import Workspace
from web._world import Api, Clock, desks, headers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_views_and_refusals_on_postgresql(tmp_path: Path, pg_db: str) -> None:
    home = tmp_path / "ws"
    workspace.init(home, db=pg_db)
    with Workspace.open(home) as ws:
        simulate(ws, SimConfig(agents=24, customers=1_000, days=1, scenarios="none", guard=True))
    desk = desks(home)[0]
    clock = Clock(desk.at)
    app = create_app(WebSettings(home=home, clock=clock))
    try:
        with Workspace.open(home) as ws, ws.store.engine.begin() as conn:
            info, desk.token = credentials.create_token(conn, desk.at, staff_id=desk.staff)
            _, desk.device_credential = credentials.enrol_device(conn, desk.device, desk.at)
            _, system = credentials.create_token(conn, desk.at, system="crm")
        api = Api(app, desk.ip)
        opened = api.post("/api/v1/interactions", headers={"Authorization": f"Bearer {system}"},
                          json={"id": 5_000_001, "contract_id": desk.contract,
                                "staff_id": desk.staff, "customer_id": desk.customers[0],
                                "purpose": desk.purpose})  # fmt: skip
        assert opened.status_code == 201, opened.text
        url = f"/api/v1/customers/{desk.customers[0]}/view"
        body = {"interaction_id": 5_000_001}
        viewed = api.post(url, headers=headers(desk), json=body)
        assert viewed.status_code == 200, viewed.text
        off = api.post(url, headers=headers(desk), json=body, peer="203.0.113.7")
        assert off.status_code == 403 and "outside the premises" in off.text
        with Workspace.open(home) as ws, ws.store.engine.begin() as conn:
            credentials.revoke_token(conn, info.id, desk.at)
        replayed = api.post(url, headers=headers(desk), json=body)
        assert replayed.status_code == 401 and "revoked" in replayed.text
    finally:
        app.state.runtime.close()
