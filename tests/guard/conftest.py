"""Fixtures shared by the guard's store-backed tests."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update

from bpoguard import workspace
from bpoguard.access import AccessRequest, InteractionStart, Verb
from bpoguard.audit import AuditSink
from bpoguard.events.lake import LakeWriter
from bpoguard.fields import FieldType
from bpoguard.guard.canary import CanaryListener
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.service import Guard
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import Store, parse_url
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

_EMPTY_VAULT = (
    "TRUNCATE vault_index, vault_values, vault_keys, customers, organisations "
    "RESTART IDENTITY CASCADE"
)


@pytest.fixture(scope="module")
def pg_store(pg_url: str) -> Iterator[Store]:
    """One scratch PostgreSQL database for the module (use empty_pg_store in tests)."""
    admin = create_engine(parse_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"bpoguard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store(parse_url(pg_url).set(database=name).render_as_string(hide_password=False))
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_pg_store(pg_store: Store) -> Store:
    """The module's PostgreSQL database, emptied of vault rows, customers and organisations."""
    with pg_store.engine.begin() as conn:
        conn.execute(text(_EMPTY_VAULT))
    return pg_store


@pytest.fixture(params=["sqlite", "postgres"])
def blank_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store with nothing in it: a SQLite file of the test's own, or PostgreSQL."""
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'guard.db'}")
        store.migrate()
    else:
        store = request.getfixturevalue("empty_pg_store")
    yield store
    if request.param == "sqlite":
        store.dispose()


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A key folder holding one fresh key-encryption key."""
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "kek.key").write_bytes(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    return folder


@pytest.fixture
def vault(keys_dir: Path) -> Vault:
    """A vault over that key folder."""
    return Vault(KeyfileProvider.from_dir(keys_dir))


# --- a simulated BPO with the guard serving from its vault -------------------------------


DAY = dt.date(2026, 3, 10)  # a Tuesday
_interaction_ids = itertools.count(60_000_000)
_DESKS_TAKEN: dict[str, set[str]] = {}  # database -> agents already given a desk in it


@dataclass
class Desk:
    """An agent at their desk, in shift, with the customers of their client to serve."""

    staff: str
    device: str
    ip: str
    at: dt.datetime
    client: str
    contract: str
    purpose: str
    fields: tuple[FieldType, ...]
    revealable: tuple[FieldType, ...]
    customers: list[int]


class Office:
    """A simulated BPO whose guard serves values from the vault and records canary touches."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.store = ws.store
        self.vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        self.ledger = Ledger.for_workspace(ws)
        self.lake = LakeWriter(ws.settings.lake_dir, source="guard")
        self.guard = Guard(
            ws.store, self.vault, AuditSink(self.ledger, self.lake, listeners=[CanaryListener()])
        )
        self._taken = _DESKS_TAKEN.setdefault(str(ws.store.url), set())

    def desk(self, client: str = "org-albion") -> Desk:
        """A fresh agent of the client (one no other test used), at their desk mid-shift."""
        with self.store.session() as s:
            agents = s.execute(
                select(m.Staff.id, m.Staff.site_id, m.Staff.shift, m.Device.id)
                .join(m.Device, m.Device.holder_id == m.Staff.id)
                .where(m.Staff.role == m.StaffRole.AGENT, m.Device.kind == m.DeviceKind.DESKTOP,
                       m.Staff.left.is_(None), m.Device.status == m.DeviceStatus.ISSUED)
                .order_by(m.Staff.id)
            ).all()  # fmt: skip
            contract = s.scalars(select(m.Contract).where(m.Contract.client_id == client)).one()
            purposes = s.scalars(select(m.Purpose).where(m.Purpose.contract_id == contract.id))
            purpose = max(purposes, key=lambda p: (len(p.revealable), len(p.fields), p.name))
            customers = list(
                s.scalars(
                    select(m.Customer.id)
                    .where(m.Customer.client_id == client, m.Customer.is_canary.is_(False))
                    .order_by(m.Customer.id)
                )
            )
        staff, site_id, shift, device = next(
            a for a in agents if a[0] not in self._taken and a[1] in contract.allowed_sites
        )
        self._taken.add(staff)
        site = self.guard.directory.site(site_id)
        assert site is not None
        start, _ = site.shifts[shift]
        local = dt.datetime.combine(DAY, start, tzinfo=site.timezone) + dt.timedelta(hours=2)
        return Desk(
            staff=staff,
            device=device,
            ip=str(site.networks[0].network_address + 77),
            at=local.astimezone(dt.UTC),
            client=client,
            contract=contract.id,
            purpose=purpose.name,
            fields=tuple(FieldType(f) for f in purpose.fields),
            revealable=tuple(FieldType(f) for f in purpose.revealable),
            customers=customers,
        )

    def call(self, desk: Desk, customer: int) -> int:
        """Open a call of the desk's purpose with a customer; returns the interaction id."""
        interaction = next(_interaction_ids)
        start = InteractionStart(interaction, desk.contract, desk.staff, customer, desk.purpose,
                                 m.Channel.CALL, desk.at)  # fmt: skip
        self.guard.open_interaction(start)
        return interaction

    @staticmethod
    def ask(desk: Desk, verb: Verb = Verb.VIEW, **changes: object) -> AccessRequest:
        """A request from the desk, a minute into its shift hour; override any part."""
        request: dict[str, object] = {
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


def build_office(home: Path, db: str | None = None, **config: object) -> None:
    """Create a workspace and simulate a small BPO into it, customers in the vault."""
    workspace.init(home, db=db)
    settings: dict[str, object] = {"agents": 36, "customers": 1_000, "days": 1,
                                   "scenarios": "none", "guard": True}  # fmt: skip
    settings.update(config)
    with Workspace.open(home) as ws:
        simulate(ws, SimConfig(**settings))  # type: ignore[arg-type]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store_db(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The database a module's BPO lives in: the workspace's SQLite file, or PostgreSQL.

    The PostgreSQL run is skipped where no server is configured (BPOGUARD_TEST_PG_URL).
    """
    if request.param == "sqlite":
        yield None
        return
    pg_url: str = request.getfixturevalue("pg_url")
    admin = create_engine(parse_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"bpoguard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parse_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def office_home(tmp_path_factory: pytest.TempPathFactory, store_db: str | None) -> Path:
    """One simulated BPO for a test module, on SQLite and (when configured) PostgreSQL."""
    home = tmp_path_factory.mktemp("office") / "ws"
    build_office(home, db=store_db)
    return home


@pytest.fixture
def office(office_home: Path) -> Iterator[Office]:
    """The module's BPO, opened with a serving guard."""
    with Workspace.open(office_home) as ws:
        opened = Office(ws)
        yield opened
        opened.lake.commit()


@pytest.fixture
def open_office(tmp_path: Path) -> Iterator[Callable[..., Office]]:
    """Build a BPO of the test's own with contract terms changed (budgets), and open it."""
    opened: list[tuple[Workspace, Office]] = []

    def make(**contract: object) -> Office:
        home = tmp_path / f"ws{len(opened)}"
        build_office(home)
        ws = Workspace.open(home)
        if contract:
            with ws.store.engine.begin() as conn:
                conn.execute(update(m.Contract).values(**contract))
        office = Office(ws)
        opened.append((ws, office))
        return office

    yield make
    for ws, office in opened:
        office.lake.commit()
        ws.close()
