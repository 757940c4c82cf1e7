from __future__ import annotations

import csv
import datetime as dt
import hashlib
import ipaddress
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.compute as pc
import pytest
from sqlalchemy import func, select

from bpoguard import workspace
from bpoguard.cli import main
from bpoguard.errors import InputError, WorkspaceError
from bpoguard.events import lake
from bpoguard.fields import FieldType
from bpoguard.ledger import Ledger
from bpoguard.simulate import world
from bpoguard.simulate.run import SimConfig, simulate
from bpoguard.store import models as m
from bpoguard.validators import validate
from bpoguard.workspace import Workspace

SMALL = SimConfig(agents=60, customers=3_000, days=10, seed=11)


def _simulate(home: Path, config: SimConfig = SMALL) -> dict[str, object]:
    workspace.init(home)
    with Workspace.open(home) as ws:
        simulate(ws, config)
    return json.loads((home / "sim" / "truth.json").read_text())


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, object]]]:
    home = tmp_path_factory.mktemp("sim") / "ws"
    truth = _simulate(home)
    by_name = {s["scenario"]: s for s in truth["scenarios"]}  # type: ignore[index, union-attr]
    return home, by_name


def _events(home: Path):  # type: ignore[no-untyped-def]
    return lake.dataset(home / "lake").to_table()


def _digest(home: Path) -> str:
    """A digest of everything a run writes that must not depend on chance."""
    h = hashlib.sha256()
    for path in sorted((home / "sim").glob("*")):
        h.update(path.name.encode() + path.read_bytes())
    table = _events(home).drop_columns(["event_id"])
    rows = sorted(json.dumps(r, default=str, sort_keys=True) for r in table.to_pylist())
    h.update("\n".join(rows).encode())
    return h.hexdigest()


def test_same_seed_gives_the_same_world_and_events(tmp_path: Path) -> None:
    config = SimConfig(agents=24, customers=1_000, days=3, seed=5)
    _simulate(tmp_path / "a", config)
    _simulate(tmp_path / "b", config)
    _simulate(tmp_path / "c", SimConfig(agents=24, customers=1_000, days=3, seed=6))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_world_has_sites_in_three_countries_with_shifts_and_contracts(sim) -> None:  # type: ignore[no-untyped-def]
    home, _ = sim
    with Workspace.open(home) as ws, ws.store.session() as s:
        countries = set(s.scalars(select(m.Site.country)))
        shifts = s.scalar(select(func.count()).select_from(m.Shift))
        purposes = s.scalars(select(m.Purpose)).all()
        supervisors = s.scalar(select(func.count()).where(m.Staff.role == m.StaffRole.SUPERVISOR))
    assert len(countries) >= 3
    assert shifts >= 3
    assert supervisors >= 4
    assert all(set(p.revealable) <= set(p.fields) for p in purposes)


def test_customer_files_hold_valid_personal_data_for_every_client(sim) -> None:  # type: ignore[no-untyped-def]
    home, _ = sim
    files = sorted((home / "sim").glob("customers-*.csv"))
    assert len(files) == len(world.CLIENTS)
    total = 0
    for path in files:
        assert path.stat().st_mode & 0o077 == 0
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                total += 1
                for name, value in row.items():
                    if name in FieldType.__members__.values():
                        validate(FieldType(name), value, country=row["country"])
    assert total == SMALL.customers


def test_calls_arrive_in_the_customers_business_hours(sim) -> None:  # type: ignore[no-untyped-def]
    home, _ = sim
    with Workspace.open(home) as ws, ws.store.session() as s:
        opened = s.scalars(
            select(m.Interaction.opened_at)
            .join(m.Contract, m.Contract.id == m.Interaction.contract_id)
            .where(m.Contract.client_id == "org-albion")
        ).all()
    london = ZoneInfo("Europe/London")
    hours = [o.replace(tzinfo=dt.UTC).astimezone(london).hour for o in opened]
    in_hours = sum(8 <= h < 20 for h in hours)
    assert len(hours) > 500
    assert in_hours / len(hours) > 0.85


def test_harvester_reveals_bank_card_and_passport_fields_without_calls_at_night(sim) -> None:  # type: ignore[no-untyped-def]
    home, truth = sim
    harvester = truth["harvester"]
    table = _events(home)
    mine = table.filter(
        pc.and_(pc.equal(table["actor"], harvester["persons"][0]),
                pc.equal(table["action"], "record.reveal"))
    )  # fmt: skip
    unasked = [r for r in mine.to_pylist() if r["interaction_id"] is None]
    assert len(unasked) >= 100
    assert {"card_number", "passport_number", "sort_code"} <= set(unasked[0]["fields"])
    delhi = ZoneInfo("Asia/Kolkata")
    assert all(1 <= r["time"].astimezone(delhi).hour < 4 for r in unasked)
    assert len(harvester["customers"]) >= 100


def test_mailbox_takeover_comes_from_the_rival_network_with_password_changes(sim) -> None:  # type: ignore[no-untyped-def]
    home, truth = sim
    mailbox = truth["mailbox"]
    rival = ipaddress.ip_network(mailbox["rival_network"])
    rows = _events(home).filter(pc.field("source") == "m365").to_pylist()
    from_rival = [r for r in rows if ipaddress.ip_address(r["src_ip"]) in rival]
    changes = [r for r in from_rival if r["action"] == "account.password_change"]
    assert {r["account"] for r in changes} == set(mailbox["accounts"])
    routine = [r for r in rows if r["action"] == "mailbox.signin" and r["outcome"] == "success"]
    assert len(routine) > len(from_rival)  # the takeover stands out against daily use


def test_leaver_keeps_the_laptop_and_reads_records_after_leaving(sim) -> None:  # type: ignore[no-untyped-def]
    home, truth = sim
    leaver = truth["leaver"]
    left = dt.date.fromisoformat(leaver["left"])
    table = _events(home)
    rows = table.filter(pc.field("actor") == leaver["persons"][0]).to_pylist()
    after = [r for r in rows if r["time"].date() > left and r["action"] == "record.view"]
    assert after and all(r["device_id"] == leaver["device"] for r in after)
    returns = [r for r in rows if r["action"] == "asset.return"]
    assert leaver["device"] not in {r["device_id"] for r in returns}
    with Workspace.open(home) as ws, ws.store.session() as s:
        person = s.get(m.Staff, leaver["persons"][0])
        laptop = s.get(m.Device, leaver["device"])
    assert person is not None and person.left == left
    assert laptop is not None and laptop.status is m.DeviceStatus.ISSUED


def test_ring_victims_were_served_by_ring_members_before_reporting(sim) -> None:  # type: ignore[no-untyped-def]
    home, truth = sim
    ring = truth["ring"]
    with (home / "sim" / "complaints.csv").open(newline="") as handle:
        complaints = {int(r["customer_id"]): r["reported_on"] for r in csv.DictReader(handle)}
    victims = set(ring["victims"])
    assert victims and victims <= set(complaints)
    assert len(complaints) > len(victims)  # unrelated complaints hide the ring's
    with Workspace.open(home) as ws, ws.store.session() as s:
        served = s.execute(
            select(m.Interaction.customer_id, m.Interaction.opened_at).where(
                m.Interaction.staff_id.in_(ring["persons"])
            )
        ).all()
    first_seen = {}
    for customer, opened in served:  # the earliest call, whatever order the rows come in
        first_seen[customer] = min(first_seen.get(customer, opened.date()), opened.date())
    assert all(first_seen[v] < dt.date.fromisoformat(complaints[v]) for v in victims)


def test_culprits_of_different_scenarios_are_different_people(sim) -> None:  # type: ignore[no-untyped-def]
    _, truth = sim
    people = [p for s in truth.values() for p in s["persons"]]
    assert len(people) == len(set(people))


def test_simulating_twice_into_one_workspace_is_refused_and_changes_nothing(sim) -> None:  # type: ignore[no-untyped-def]
    home, _ = sim
    before = lake.count(home / "lake")
    with Workspace.open(home) as ws, pytest.raises(WorkspaceError, match="already holds a world"):
        simulate(ws, SMALL)
    assert lake.count(home / "lake") == before


def test_a_failed_run_leaves_no_rows_no_events_and_no_files(home: Path) -> None:
    workspace.init(home)
    calls = []

    def explode(stage: str, done: int, total: int) -> None:
        calls.append(stage)
        if stage == "days" and done == 2:
            raise RuntimeError("disk full")

    with Workspace.open(home) as ws, pytest.raises(RuntimeError):
        simulate(ws, SimConfig(agents=24, customers=1_000, days=4), explode)
    assert "customers" in calls
    assert lake.count(home / "lake") == 0
    assert not any(p.name != "." for p in (home / "lake").iterdir())
    assert list((home / "sim").iterdir()) == []
    with Workspace.open(home) as ws, ws.store.session() as s:
        assert s.scalar(select(func.count()).select_from(m.Customer)) == 0
        assert s.scalar(select(func.count()).select_from(m.Staff)) == 0
        assert Ledger.for_workspace(ws).size() == 0


@pytest.mark.parametrize(
    "scenarios, settings, message",
    [
        ("harvester,bogus", (), "unknown scenario 'bogus'"),
        ("ring", ("ring.size",), "not of the form"),
        ("ring", ("harvester.rate=5",), "not chosen"),
        ("ring", ("ring.colour=red",), "has no setting 'colour'"),
        ("ring", ("ring.size=many",), "must be a int"),
    ],
)
def test_bad_scenario_choices_are_refused_clearly(
    home: Path, scenarios: str, settings: tuple[str, ...], message: str
) -> None:
    workspace.init(home)
    with Workspace.open(home) as ws, pytest.raises(InputError, match=message):
        simulate(ws, SimConfig(agents=24, customers=1_000, days=2, scenarios=scenarios,
                               settings=settings))  # fmt: skip


def test_scenario_settings_change_the_crime(tmp_path: Path) -> None:
    config = SimConfig(agents=48, customers=2_000, days=4, scenarios="ring",
                       settings=("ring.size=5",))  # fmt: skip
    truth = _simulate(tmp_path / "ws", config)
    (ring,) = truth["scenarios"]  # type: ignore[misc]
    assert len(ring["persons"]) == 5


def test_simulate_command_prints_one_json_document(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.init(home)
    args = ["simulate", "--home", str(home), "--agents", "24", "--customers", "1000",
            "--days", "2", "--scenarios", "harvester", "--json"]  # fmt: skip
    assert main(args) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["customers"] == 1000
    assert [s["scenario"] for s in document["scenarios"]] == ["harvester"]
    assert document["events"] == lake.count(home / "lake")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--agents", "3"], "--agents must be between"),
        (["--days", "0"], "--days must be between"),
        (["--start", "yesterday"], "is not a date"),
        (["--agents", "many"], "Invalid value for '--agents'"),
    ],
)
def test_simulate_command_refuses_bad_values_in_one_line(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    workspace.init(home)
    assert main(["simulate", "--home", str(home), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("bpoguard: ")


def test_every_record_request_is_a_ledger_entry_that_its_lake_row_points_to(sim) -> None:  # type: ignore[no-untyped-def]
    home, _ = sim
    table = _events(home)
    requests = table.filter(pc.field("source") == "guard").to_pylist()
    with Workspace.open(home) as ws:
        ledger = Ledger.for_workspace(ws)
        assert ledger.size() == len(requests)
        assert ledger.verify().ok
        checkpoint = ledger.latest_checkpoint()
        for row in requests[:: max(1, len(requests) // 50)]:
            entry = ledger.entry(row["ledger_index"])
            assert (entry["staff"], entry["customer"], entry["fields"]) == (
                row["actor"],
                row["customer_id"],
                row["fields"],
            )
    assert checkpoint is not None and checkpoint.size == len(requests)
    assert sorted(r["ledger_index"] for r in requests) == list(range(len(requests)))


def test_with_the_guard_deciding_the_culprits_are_refused_and_ordinary_work_is_not(
    tmp_path: Path,
) -> None:
    truth = _simulate(tmp_path / "ws", SimConfig(agents=48, customers=2_000, days=6, seed=4,
                                                 guard=True))  # fmt: skip
    culprits = {s["scenario"]: s["persons"] for s in truth["scenarios"]}  # type: ignore[index, union-attr]
    rows = _events(tmp_path / "ws").filter(pc.field("source") == "guard").to_pylist()
    harvested = [r for r in rows if r["actor"] == culprits["harvester"][0]
                 and r["interaction_id"] is None]  # fmt: skip
    assert harvested and all(r["outcome"] == "denied" for r in harvested)
    exports = [r for r in rows if r["action"] == "record.export"]
    assert exports and all(r["outcome"] == "denied" for r in exports)
    cast = {person for persons in culprits.values() for person in persons}
    everyone_else = [r for r in rows if r["actor"] not in cast]
    refused = sum(r["outcome"] == "denied" for r in everyone_else)
    assert refused / len(everyone_else) < 0.01  # calls at the very end of a shift, only
