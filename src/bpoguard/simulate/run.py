"""`bpoguard simulate`: cast a world, play it out, and say what really happened.

Writes into an initialised workspace: the world and its interactions in the
store (one transaction: all or nothing), the events in the lake (staged, then
published), and in sim/ the clients' customer files, the ground truth and the
complaints file (each written whole, then renamed into place).
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from sqlalchemy import Connection, func, insert, select, update

from bpoguard import collector
from bpoguard.access import RecordGateway
from bpoguard.audit import AuditSink
from bpoguard.detect.instant import InstantRules
from bpoguard.errors import InputError, WorkspaceError
from bpoguard.events.lake import LakeWriter
from bpoguard.fields import FieldType
from bpoguard.guard import canary
from bpoguard.guard.keys import KeyfileProvider, KeyProvider
from bpoguard.guard.service import Guard
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.simulate import engine, scenarios, world
from bpoguard.simulate.engine import Day, Sim
from bpoguard.simulate.gateway import ServingGateway, UnguardedGateway
from bpoguard.simulate.identities import IdentityFactory
from bpoguard.store import models as m
from bpoguard.validators import FIELD_COUNTRIES, normalise
from bpoguard.workspace import Workspace

Progress = Callable[[str, int, int], None]  # (stage, done, total)
CUSTOMER_CHUNK = 50_000
AUDIT_BATCH = 5_000  # decisions per ledger append: one write for many entries
TRUTH_NAME = "truth.json"
COMPLAINTS_NAME = "complaints.csv"


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Same config and seed, same world."""

    agents: int = 200
    customers: int = 20_000
    days: int = 7
    seed: int = 1
    start: dt.date = dt.date(2026, 3, 2)  # a Monday
    scenarios: str = "all"
    settings: tuple[str, ...] = ()
    guard: bool = False  # customers in the vault, every request decided and served by the guard

    def check(self) -> None:
        """Raise InputError for values the simulator cannot honour."""
        if not 12 <= self.agents <= 100_000:
            raise InputError("--agents must be between 12 and 100000")
        if not 1_000 <= self.customers <= 50_000_000:
            raise InputError("--customers must be between 1000 and 50000000")
        if not 1 <= self.days <= 730:
            raise InputError("--days must be between 1 and 730")
        if self.seed < 0:
            raise InputError("--seed must be zero or more")


@dataclass
class SimSummary:
    """What was simulated and where it went."""

    config: dict[str, Any]
    staff: int
    agents: int
    sites: int
    clients: int
    customers: int
    interactions: int
    requests: int
    denied: int  # requests the guard refused (0 when it was not deciding)
    events: int
    joiners: int
    leavers: int
    ledger_entries: int  # the ledger's size after the run, at its signed checkpoint
    scenarios: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def simulate(
    ws: Workspace,
    config: SimConfig,
    progress: Progress | None = None,
    keys: KeyProvider | None = None,
) -> SimSummary:
    """Simulate a world into the workspace; on any failure nothing is kept.

    With ``config.guard`` the customers are encrypted into the vault under
    ``keys`` (the workspace's key files by default) and every request is
    decided, and served, by the guard.
    """
    config.check()
    chosen = scenarios.parse(config.scenarios, list(config.settings))
    report = progress or (lambda stage, done, total: None)
    store = ws.store
    with store.session() as session:
        if session.scalar(select(func.count()).select_from(m.Staff)):
            raise WorkspaceError(
                f"workspace {ws.home} already holds a world; simulate into a new one (bpoguard init)"
            )
    rng = np.random.default_rng([config.seed, 1])
    cast = world.build(config.agents, config.customers, config.start, rng)
    lake = LakeWriter(ws.settings.lake_dir, source="sim")
    ledger = Ledger.for_workspace(ws)
    try:
        # The store commits first, then sim/ files move into place, then the lake
        # publishes: a failure before the commit leaves nothing anywhere.
        with _staged_files(ws.settings.sim_dir) as staged, store.engine.begin() as conn:
            vault = Vault(keys or KeyfileProvider.from_dir(ws.settings.keys_dir))
            gateway: RecordGateway
            if config.guard:
                sink = AuditSink(
                    ledger, lake, AUDIT_BATCH, [canary.CanaryListener(), InstantRules()]
                )
                gateway = ServingGateway(Guard(store, vault, sink, conn=conn))
            else:
                gateway = UnguardedGateway(conn, AuditSink(ledger, lake, batch=AUDIT_BATCH))
            sim = Sim(world=cast, gateway=gateway, lake=lake, seed=config.seed)
            engine.prepare(sim)
            for i, scenario in enumerate(chosen):
                scenario.cast(sim, config.days, np.random.default_rng([config.seed, 2, i]))
            _persist_world(conn, cast)
            _persist_customers(
                conn, cast, config.seed, staged, report, vault if config.guard else None
            )
            _plant_canaries(conn, sim, config)
            _play(sim, conn, config, chosen, report)
            truth = _truth(config, chosen, sim)
            _write_json(staged(TRUTH_NAME), truth)
            _write_complaints(staged(COMPLAINTS_NAME), chosen, cast)
            lake.flush()
    except BaseException:
        lake.abort()
        raise
    events = lake.commit()
    checkpoint = ledger.checkpoint()
    return SimSummary(
        config=_config_doc(config),
        staff=len(cast.people),
        agents=sum(1 for p in cast.people.values() if engine.is_agent(p)),
        sites=len(world.SITES),
        clients=len(world.CLIENTS),
        customers=config.customers,
        interactions=sim.calls,
        requests=sim.requests,
        denied=sim.denied,
        events=events,
        joiners=sum(1 for kind, _, _ in sim.hr_changes if kind == "joined"),
        leavers=sum(1 for kind, _, _ in sim.hr_changes if kind == "left"),
        ledger_entries=checkpoint.size,
        scenarios=truth["scenarios"],
        files={
            "truth": str(ws.settings.sim_dir / TRUTH_NAME),
            "complaints": str(ws.settings.sim_dir / COMPLAINTS_NAME),
            "customers": str(ws.settings.sim_dir),
        },
    )


def _play(
    sim: Sim,
    conn: Connection,
    config: SimConfig,
    chosen: list[scenarios.Scenario],
    report: Progress,
) -> None:
    known = set(sim.world.people)
    # A day allocates millions of small tuples and lists (lake rows, pending entries) and
    # frees few cycles: the collector's passes over the growing buffers cost a sixth of
    # the day. Memory stays bounded; what is simulated does not change.
    with collector.paused():
        _days(sim, conn, config, chosen, report, known)


def _days(
    sim: Sim,
    conn: Connection,
    config: SimConfig,
    chosen: list[scenarios.Scenario],
    report: Progress,
    known: set[str],
) -> None:
    for index in range(config.days):
        day = Day(
            index,
            config.start + dt.timedelta(days=index),
            np.random.default_rng([config.seed, 100, index]),
        )
        for scenario in chosen:
            scenario.play(sim, day)
        engine.play_day(sim, day)
        newcomers = [sim.world.people[p] for p in sim.world.people if p not in known]
        if newcomers:
            _insert_staff(conn, sim.world, newcomers)
            known.update(p.id for p in newcomers)
        sim.gateway.flush()
        _sync_staff(conn, sim.world)
        if isinstance(sim.gateway, ServingGateway):
            sim.gateway.guard.refresh()  # as HR and the asset register would tell it
        gc.collect()
        report("days", index + 1, config.days)


@contextmanager
def _staged_files(sim_dir: Path) -> Iterator[Callable[[str], Path]]:
    """Files written into a hidden folder, moved into sim/ only if all went well."""
    sim_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=sim_dir))
    try:
        yield lambda name: staging / name
        for path in staging.iterdir():
            os.replace(path, sim_dir / path.name)
    finally:
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()


def _persist_world(conn: Connection, cast: world.World) -> None:
    conn.execute(
        insert(m.Organisation),
        [
            {
                "id": world.PROVIDER_ID,
                "name": "Meridian Contact Services",
                "kind": m.OrgKind.PROVIDER,
                "country": "IN",
                "networks": [s.network for s in world.SITES],
            },
            {
                "id": world.RIVAL_ID,
                "name": "Vantage BPO Solutions",
                "kind": m.OrgKind.EXTERNAL,
                "country": "IN",
                "networks": [world.RIVAL_NETWORK],
            },
            *(
                {
                    "id": c.id,
                    "name": c.name,
                    "kind": m.OrgKind.CLIENT,
                    "country": c.country,
                    "networks": [],
                }
                for c in world.CLIENTS
            ),
        ],
    )
    conn.execute(
        insert(m.Site),
        [
            {
                "id": s.id,
                "provider_id": world.PROVIDER_ID,
                "name": s.name,
                "city": s.city,
                "country": s.country,
                "timezone": s.timezone,
                "premises_networks": [s.network],
            }
            for s in world.SITES
        ],
    )
    shifts = {(t.site, t.start_hour) for t in cast.teams}
    conn.execute(
        insert(m.Shift),
        [
            {
                "site_id": site,
                "name": _shift_name(hour),
                "start": f"{hour:02d}:00",
                "end": f"{(hour + engine.SHIFT_HOURS) % 24:02d}:00",
            }
            for site, hour in sorted(shifts)
        ],
    )
    for client in world.CLIENTS:
        conn.execute(
            insert(m.Contract).values(
                id=engine.contract_id(client),
                client_id=client.id,
                provider_id=world.PROVIDER_ID,
                allowed_sites=list(client.sites),
                records_per_shift=80,
                records_per_hour=25,
                reveals_per_shift=20,
                off_premises_ban=True,
                retention_days=365,
                starts=cast.start - dt.timedelta(days=400),
                ends=None,
            )
        )
        conn.execute(
            insert(m.Purpose),
            [
                {
                    "contract_id": engine.contract_id(client),
                    "name": name,
                    "fields": [f.value for f in needed],
                    "revealable": [f.value for f in revealable],
                }
                for name, (needed, revealable) in client.purposes.items()
            ],
        )
    _insert_staff(conn, cast, list(cast.people.values()))
    if cast.mailboxes:
        conn.execute(
            insert(m.SharedAccount),
            [
                {
                    "id": box,
                    "client_id": _mailbox_client(cast, holders),
                    "kind": "mailbox",
                    "holders": holders,
                }
                for box, holders in cast.mailboxes.items()
            ],
        )


def _mailbox_client(cast: world.World, holders: list[str]) -> str:
    return cast.people[holders[0]].client


def _shift_name(hour: int) -> str:
    """Shift names say when they start: day-10, late-15, night-21."""
    part = "night" if hour < 4 or hour >= 20 else "day" if hour < 12 else "late"
    return f"{part}-{hour:02d}"


def _insert_staff(conn: Connection, cast: world.World, people: list[world.Person]) -> None:
    # Supervisors first: agents refer to them.
    ordered = sorted(people, key=lambda p: p.role is not m.StaffRole.SUPERVISOR)
    starts = {t.id: t.start_hour for t in cast.teams}
    conn.execute(
        insert(m.Staff),
        [
            {
                "id": p.id,
                "name": p.name,
                "email": f"{p.id.lower()}@meridian.example",
                "organisation_id": world.PROVIDER_ID,
                "site_id": p.site,
                "role": p.role,
                "team": p.team,
                "supervisor_id": p.supervisor,
                "shift": _shift_name(starts[p.team]),
                "joined": p.joined,
                "notice_given": None,
                "left": None,
            }
            for p in ordered
        ],
    )
    conn.execute(
        insert(m.Device),
        [
            {
                "id": d,
                "kind": cast.devices[d].kind,
                "site_id": cast.devices[d].site,
                "holder_id": p.id,
                "status": m.DeviceStatus.ISSUED,
                "issued_at": dt.datetime.combine(cast.devices[d].issued, dt.time(9), tzinfo=dt.UTC),
            }
            for p in ordered
            for d in p.devices
        ],
    )


def _persist_customers(
    conn: Connection,
    cast: world.World,
    seed: int,
    staged: Callable[[str], Path],
    report: Progress,
    vault: Vault | None,
) -> None:
    factory = IdentityFactory(seed)
    total = sum(end - first for first, end in cast.customer_ranges.values())
    done = 0
    for client in world.CLIENTS:
        first, end = cast.customer_ranges[client.id]
        columns = [f.value for f in FIELD_COUNTRIES[client.country]]
        prefix = client.id.removeprefix("org-")[:3].upper()
        with staged(f"customers-{client.id.removeprefix('org-')}.csv").open(
            "w", newline="", encoding="utf-8"
        ) as handle:
            os.chmod(handle.name, 0o600)  # synthetic, but shaped like the real thing
            writer = csv.writer(handle)
            writer.writerow(["customer_id", "ref", "country", *columns])
            for chunk in range(first, end, CUSTOMER_CHUNK):
                ids = range(chunk, min(chunk + CUSTOMER_CHUNK, end))
                people = factory.batch(client.country, len(ids))
                conn.execute(
                    insert(m.Customer),
                    [
                        {
                            "id": i,
                            "client_id": client.id,
                            "ref": f"{prefix}-{i:08d}",
                            "country": client.country,
                            "is_canary": False,
                        }
                        for i in ids
                    ],
                )
                _write_customers(writer, ids, prefix, client.country, columns, people)
                if vault is not None:
                    vault.put_many(conn, client.id, _vault_records(ids, client.country, people))
                done += len(ids)
                report("customers", done, total)


def _write_customers(
    writer: Any,
    ids: range,
    prefix: str,
    country: str,
    columns: list[str],
    people: list[dict[str, str]],
) -> None:
    writer.writerows(
        [i, f"{prefix}-{i:08d}", country, *(person[c] for c in columns)]
        for i, person in zip(ids, people, strict=True)
    )


def _vault_records(
    ids: range, country: str, people: list[dict[str, str]]
) -> list[tuple[int, dict[FieldType, str]]]:
    """The generator's values in the vault's canonical form (they are valid by construction)."""
    return [
        (i, {FieldType(k): normalise(FieldType(k), v, country) for k, v in person.items()})
        for i, person in zip(ids, people, strict=True)
    ]


def _plant_canaries(conn: Connection, sim: Sim, config: SimConfig) -> None:
    """Register the world's canaries, each placed with one of its client's agents."""
    rng = np.random.default_rng([config.seed, 7_000_003])
    at = dt.datetime.combine(config.start, dt.time(0), tzinfo=dt.UTC)
    for client_id, ids in sim.canaries.items():
        agents = sorted(p.id for p in sim.world.people.values()
                        if p.client == client_id and engine.is_agent(p))  # fmt: skip
        placed = (
            [agents[int(k)] for k in rng.integers(0, len(agents), len(ids))] if agents else None
        )
        canary.register(conn, client_id, [int(i) for i in ids], "simulator", at, placed)


def _sync_staff(conn: Connection, cast: world.World) -> None:
    """Write what the day changed about people and devices: notice, leaving, returns."""
    for person in cast.people.values():
        if person.notice_given or person.left:
            conn.execute(
                update(m.Staff)
                .where(m.Staff.id == person.id)
                .values(notice_given=person.notice_given, left=person.left)
            )
    for device in cast.devices.values():
        if device.holder == "":
            conn.execute(
                update(m.Device)
                .where(m.Device.id == device.id)
                .values(status=m.DeviceStatus.RETURNED, holder_id=None)
            )


def _truth(config: SimConfig, chosen: list[scenarios.Scenario], sim: Sim) -> dict[str, Any]:
    return {
        "config": _config_doc(config),
        "scenarios": [s.truth() for s in chosen],
        "canaries": {client: [int(i) for i in ids] for client, ids in sorted(sim.canaries.items())},
    }


def _config_doc(config: SimConfig) -> dict[str, Any]:
    doc = asdict(config)
    doc["start"] = config.start.isoformat()
    doc["settings"] = list(config.settings)
    return doc


def _write_json(path: Path, document: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


def _write_complaints(path: Path, chosen: list[scenarios.Scenario], cast: world.World) -> None:
    rings = [s for s in chosen if isinstance(s, scenarios.Ring)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        _complaints_csv(handle, rings, cast)


def _complaints_csv(handle: TextIO, rings: list[scenarios.Ring], cast: world.World) -> None:
    writer = csv.writer(handle)
    writer.writerow(["customer_id", "client_id", "reported_on", "kind", "summary"])
    for ring in rings:
        name = cast.client(ring.client).name
        for customer, reported, _ in ring.complaints():
            writer.writerow(
                [
                    customer,
                    ring.client,
                    reported,
                    "scam_call",
                    f"caller claimed to be from {name} and asked for card details",
                ]
            )
