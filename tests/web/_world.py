"""Helpers for the web tests: desks in a simulated BPO, and a client for the app.

Requests go through httpx in-process (ASGITransport), with the socket peer
set to the address a desk really has, so the guard decides exactly as it
would behind a real server.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from sqlalchemy import select

from bpoguard.fields import FieldType
from bpoguard.guard.directory import Directory
from bpoguard.store import models as m
from bpoguard.web import credentials
from bpoguard.workspace import Workspace

DAY = dt.date(2026, 3, 3)  # inside the simulated world's first week
PROXY = "10.250.0.1"  # the BPO's reverse proxy in these tests
_ids = itertools.count(70_000_000)


class Clock:
    """The moment requests are decided at: a desk's mid-shift, moved by tests."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


@dataclass
class Desk:
    """An agent at their desk, mid-shift, with a token, an enrolled device and customers."""

    staff: str
    site: str
    device: str
    ip: str
    at: dt.datetime
    contract: str
    purpose: str
    fields: tuple[FieldType, ...]
    revealable: tuple[FieldType, ...]
    customers: list[int]
    token: str = field(default="", repr=False)  # secrets stay out of test output
    device_credential: str = field(default="", repr=False)


def desks(home: Path, client: str = "org-albion") -> list[Desk]:
    """Every agent of the client's allowed sites who has a desktop, at DAY mid-shift."""
    with Workspace.open(home) as ws, ws.store.engine.connect() as conn:
        directory = Directory.load(conn)
        agents = conn.execute(
            select(m.Staff.id, m.Staff.site_id, m.Staff.shift, m.Device.id)
            .join(m.Device, m.Device.holder_id == m.Staff.id)
            .where(
                m.Staff.role == m.StaffRole.AGENT,
                m.Device.kind == m.DeviceKind.DESKTOP,
                m.Device.status == m.DeviceStatus.ISSUED,
                m.Staff.left.is_(None),
                m.Staff.notice_given.is_(None),
            )
            .order_by(m.Staff.id)
        ).all()
        contract = conn.execute(select(m.Contract).where(m.Contract.client_id == client)).one()
        purpose = conn.execute(
            select(m.Purpose).where(m.Purpose.contract_id == contract.id).order_by(m.Purpose.name)
        ).first()
        customers = list(
            conn.scalars(
                select(m.Customer.id)
                .where(m.Customer.client_id == client, m.Customer.is_canary.is_(False))
                .order_by(m.Customer.id)
            )
        )
    assert purpose is not None
    found = []
    for staff, site_id, shift, device in agents:
        site = directory.site(site_id)
        if site is None or site_id not in contract.allowed_sites or shift not in site.shifts:
            continue
        start, _ = site.shifts[shift]
        local = dt.datetime.combine(DAY, start, tzinfo=site.timezone) + dt.timedelta(hours=2)
        found.append(
            Desk(
                staff=staff,
                site=site.id,
                device=device,
                ip=str(site.networks[0].network_address + 77),
                at=local.astimezone(dt.UTC),
                contract=contract.id,
                purpose=purpose.name,
                fields=tuple(FieldType(f) for f in purpose.fields),
                revealable=tuple(FieldType(f) for f in purpose.revealable),
                customers=customers,
            )
        )
    return found


class Api:
    """A synchronous face on httpx.AsyncClient over the app, for readable tests."""

    def __init__(self, app: FastAPI, peer: str) -> None:
        self.app = app
        self.peer = peer

    def request(
        self, method: str, url: str, *, peer: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request from `peer` (the socket's address)."""

        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=(peer or self.peer, 40123))
            async with httpx.AsyncClient(transport=transport, base_url="http://guard") as c:
                return await c.request(method, url, **kwargs)

        return anyio.run(send)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)


@dataclass
class Web:
    """The app over the world, its clock, the CRM's token, and desks to sit at."""

    home: Path
    app: FastAPI
    api: Api
    clock: Clock
    system_token: str = field(repr=False)
    free: list[Desk]

    def desk(self) -> Desk:
        """The next agent in turn, with a new token and a newly enrolled device."""
        desk = self.free.pop(0)
        self.free.append(desk)  # agents take turns; each turn mints fresh credentials
        self.clock.at = desk.at
        with Workspace.open(self.home) as ws, ws.store.engine.begin() as conn:
            _, desk.token = credentials.create_token(conn, desk.at, staff_id=desk.staff)
            _, desk.device_credential = credentials.enrol_device(conn, desk.device, desk.at)
        return desk

    def open_call(self, desk: Desk, customer: int | None = None) -> int:
        """The CRM opens a call for the desk's agent; returns the interaction id."""
        interaction = next(_ids)
        response = self.api.post(
            "/api/v1/interactions",
            headers={"Authorization": f"Bearer {self.system_token}"},
            json={
                "id": interaction,
                "contract_id": desk.contract,
                "staff_id": desk.staff,
                "customer_id": customer or desk.customers[0],
                "purpose": desk.purpose,
                "channel": "call",
            },
        )
        assert response.status_code == 201, response.text
        return interaction


def headers(desk: Desk) -> dict[str, str]:
    """What a desk sends with every request."""
    return {
        "Authorization": f"Bearer {desk.token}",
        "X-Device-Credential": desk.device_credential,
    }
