"""Playing out a simulated BPO world day by day, through the record gateway.

Each day draws from its own random stream (seed, day), so the same seed gives
the same world however the run is chunked, and memory stays flat as days grow:
a day's events go to the lake writer and the store in batches, then are gone.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from bpoguard.access import AccessRequest, InteractionStart, RecordGateway, Verb
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.fields import FieldType
from bpoguard.simulate.world import (
    CLIENTS,
    MOBILE_CARRIER,
    ClientSpec,
    DeviceRecord,
    Person,
    Team,
    World,
    address_in,
    hire_replacement,
)
from bpoguard.store.models import Channel, StaffRole

SHIFT_HOURS = 9
CALLS_PER_AGENT_HOUR = 5.0
WEEKDAY_LOAD = (1.0, 0.95, 0.95, 0.9, 0.9, 0.55, 0.3)  # Monday first
CHANNELS = (Channel.CALL, Channel.CALL, Channel.CALL, Channel.CHAT, Channel.TICKET)
# Canary customers: a pinch of every client's records that no real call reaches.
CANARY_SHARE = 1 / 400
MIN_CANARIES = 2
# Notice rate per agent per day: about 1.5% of staff a month, as in contact centres.
NOTICE_RATE = 0.0005
NOTICE_DAYS = 14
# Share of calls on which the agent reveals a field the purpose allows (before habit).
REVEAL_RATE = 0.15
# Days a person with work apps on their phone signs in from home, and from mobile data.
HOME_SIGNIN_DAYS = 0.85  # token refreshes on home Wi-Fi: most days
MOBILE_SIGNIN_DAYS = 0.4


def contract_id(client: ClientSpec) -> str:
    return f"ctr-{client.id.removeprefix('org-')}-meridian"


@dataclass
class Day:
    index: int
    date: dt.date
    rng: np.random.Generator


@dataclass(frozen=True)
class Call:
    """One call as a scenario's hook sees it, while it is still open."""

    person: Person
    customer: int
    opened: dt.datetime
    interaction: int
    purpose: str
    revealable: tuple[FieldType, ...]  # what the purpose lets the agent reveal
    revealed: tuple[FieldType, ...]  # what the agent revealed on it already
    day: Day


@dataclass
class Sim:
    """The running simulation: the world, the gateway, the lake, and counters."""

    world: World
    gateway: RecordGateway
    lake: LakeWriter
    seed: int
    customer_order: dict[str, np.ndarray] = field(default_factory=dict)
    canaries: dict[str, np.ndarray] = field(default_factory=dict)  # client -> canary ids
    next_interaction: int = 1
    next_event: int = 1
    calls: int = 0
    requests: int = 0
    denied: int = 0
    hr_changes: list[tuple[str, str, dt.date]] = field(default_factory=list)
    cast: set[str] = field(default_factory=set)  # people given a part in a scenario
    call_hooks: list[Callable[[Call], None]] = field(default_factory=list)

    # -- what scenarios and the day loop use ---------------------------------

    def emit(self, **fields: Any) -> None:
        """Write an event from an imported-log source (HR, assets, M365, EDR)."""
        self.lake.write(Event(event_id=f"sim-{self.seed}-{self.next_event}", **fields))
        self.next_event += 1

    def ask(
        self,
        person: Person,
        verb: Verb,
        customer: int,
        fields: tuple[FieldType, ...],
        at: dt.datetime,
        source_ip: str,
        device: str | None,
        interaction: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Put one request to the gateway, as the agent's desktop would."""
        self.requests += 1
        decision = self.gateway.request(
            AccessRequest(
                staff_id=person.id,
                verb=verb,
                customer_id=customer,
                fields=fields,
                at=at,
                source_ip=source_ip,
                device_id=device,
                interaction_id=interaction,
                reason=reason,
            )
        )
        self.denied += not decision.allowed

    def pick_customers(self, client: str, rng: np.random.Generator, n: int) -> np.ndarray:
        """Customers who call: a few call often, most rarely (a skewed draw)."""
        order = self.customer_order[client]
        idx = np.floor(len(order) * rng.random(n) ** 2.2).astype(np.int64)
        return order[idx]

    def uniform_customers(self, client: str, rng: np.random.Generator, n: int) -> np.ndarray:
        first, end = self.world.customer_ranges[client]
        return rng.integers(first, end, size=n)

    def works(self, person: Person, date: dt.date) -> bool:
        if person.left is not None and date > person.left:
            return False
        return date.weekday() not in person.days_off

    def shift_start(self, team: Team, date: dt.date) -> dt.datetime:
        tz = ZoneInfo(self.world.site(team.site).timezone)
        local = dt.datetime.combine(date, dt.time(team.start_hour), tzinfo=tz)
        return local.astimezone(dt.UTC)


def prepare(sim: Sim) -> None:
    """Fix each client's canaries and order of callers (who calls most) from the seed.

    Canaries are left out of the callers: no real call ever reaches one. A
    harvester drawing from all of a client's records can still meet them.
    """
    rng = np.random.default_rng([sim.seed, 7_000_001])
    canary_rng = np.random.default_rng([sim.seed, 7_000_002])
    for client in CLIENTS:
        first, end = sim.world.customer_ranges[client.id]
        ids = np.arange(first, end, dtype=np.int64)
        count = max(MIN_CANARIES, round(len(ids) * CANARY_SHARE))
        canaries = np.sort(canary_rng.choice(ids, size=count, replace=False))
        sim.canaries[client.id] = canaries
        order = rng.permutation(ids)
        sim.customer_order[client.id] = order[~np.isin(order, canaries)]


def play_day(sim: Sim, day: Day) -> None:
    """One day of ordinary work at every team, phones signing in, then staff changes."""
    for team in sim.world.teams:
        _team_day(sim, team, day)
    _phone_signins(sim, day)
    _staff_turnover(sim, day)


def _employed(person: Person, date: dt.date) -> bool:
    return person.joined <= date and (person.left is None or date <= person.left)


def _phone_signins(sim: Sim, day: Day) -> None:
    """Outlook and Teams on staff's own phones sign in to their own accounts (Entra log).

    From home Wi-Fi in the evening or before work, and from a carrier's shared
    mobile address on the way in; never during the shift, when phones stay in
    the lockers. Everyone with the apps does this, whatever else they do.
    """
    teams = {t.id: t for t in sim.world.teams}
    for person in sim.world.people.values():
        if not person.phone_apps or not _employed(person, day.date):
            continue
        start = sim.shift_start(teams[person.team], day.date)
        rng = day.rng
        if rng.random() < HOME_SIGNIN_DAYS:
            evening = rng.random() < 0.7
            for _ in range(int(rng.integers(1, 4))):
                hours = SHIFT_HOURS + rng.uniform(1.0, 5.0) if evening else -rng.uniform(1.0, 3.0)
                at = start + dt.timedelta(hours=float(hours))
                _own_signin(sim, person, at, person.home_ip, "Microsoft Teams")
        if sim.works(person, day.date) and rng.random() < MOBILE_SIGNIN_DAYS:
            at = start - dt.timedelta(hours=float(rng.uniform(0.3, 1.0)))
            carrier_ip = address_in(MOBILE_CARRIER, int(rng.integers(0, 1020)))
            _own_signin(sim, person, at, carrier_ip, "Outlook Mobile")


def _own_signin(
    sim: Sim, person: Person, at: dt.datetime, ip: str, app: str, device: str | None = None
) -> None:
    """A sign-in to the person's own cloud account, as Entra ID logs it."""
    sim.emit(
        time=at,
        source="entra",
        action=Action.SIGNIN,
        actor=person.id,
        account=f"{person.id.lower()}@meridian.example",
        target=app,
        src_ip=ip,
        device_id=device,
        outcome=Outcome.SUCCESS,
    )


def _team_day(sim: Sim, team: Team, day: Day) -> None:
    working = [sim.world.people[a] for a in team.agents if sim.works(sim.world.people[a], day.date)]
    if not working:
        return
    start = sim.shift_start(team, day.date)
    for person in working:
        _logon_logoff(sim, person, start, day)
    client = sim.world.client(team.client)
    for hour in range(SHIFT_HOURS):
        slot = start + dt.timedelta(hours=hour)
        expected = len(working) * CALLS_PER_AGENT_HOUR * _load(client, slot)
        calls = int(day.rng.poisson(expected))
        if calls:
            _calls(sim, team, client, working, slot, calls, day)


def _load(client: ClientSpec, slot: dt.datetime) -> float:
    """Share of full call volume in this hour, by the customers' local clock and weekday."""
    local = slot.astimezone(ZoneInfo(client.timezone))
    if not client.open_hour <= local.hour < client.close_hour:
        return 0.08
    span = client.close_hour - client.open_hour
    # Busiest mid-morning and early afternoon, quieter at the edges of the day.
    shape = 0.55 + 0.45 * math.sin(math.pi * (local.hour - client.open_hour + 0.5) / span)
    return shape * WEEKDAY_LOAD[local.weekday()]


def _calls(
    sim: Sim,
    team: Team,
    client: ClientSpec,
    working: list[Person],
    slot: dt.datetime,
    n: int,
    day: Day,
) -> None:
    rng = day.rng
    # Drawn as arrays, then read as Python lists: indexing an array makes a NumPy
    # scalar each time. The values (and so the world) are the same.
    agents = rng.integers(0, len(working), size=n).tolist()
    customers = sim.pick_customers(client.id, rng, n).tolist()
    offsets = (rng.random(n) * 3600.0).tolist()
    durations = np.clip(rng.lognormal(math.log(300), 0.5, size=n), 45, 3600).tolist()
    purposes = list(client.purposes)
    purpose_idx = rng.integers(0, len(purposes), size=n).tolist()
    verify_draw = rng.random(n).tolist()
    reveal_draw = rng.random(n).tolist()
    channel_idx = rng.integers(0, len(CHANNELS), size=n).tolist()
    ctr = contract_id(client)
    for i in range(n):
        person = working[agents[i]]
        opened = slot + dt.timedelta(seconds=offsets[i])
        purpose = purposes[purpose_idx[i]]
        fields, revealable = client.purposes[purpose]
        customer = customers[i]
        interaction = sim.next_interaction
        sim.next_interaction += 1
        sim.calls += 1
        start = InteractionStart(interaction, ctr, person.id, customer, purpose,
                                 CHANNELS[channel_idx[i]], opened, team.site)  # fmt: skip
        sim.gateway.open_interaction(start)
        closed = opened + dt.timedelta(seconds=durations[i])
        _crm_events(sim, start, closed)
        desk = person.devices[0]
        at = opened + dt.timedelta(seconds=8)
        sim.ask(person, Verb.VIEW, customer, fields, at, person.desk_ip, desk, interaction)
        if verify_draw[i] < 0.6:
            check = (FieldType.DATE_OF_BIRTH,) if FieldType.DATE_OF_BIRTH in fields else fields[1:2]
            sim.ask(
                person,
                Verb.VERIFY,
                customer,
                check,
                at + dt.timedelta(seconds=20),
                person.desk_ip,
                desk,
                interaction,
            )
        revealed: tuple[FieldType, ...] = ()
        # Agents differ: some confirm what is on file more often than others.
        if revealable and reveal_draw[i] < REVEAL_RATE * person.contact_habit:
            field = revealable[int(reveal_draw[i] * 100) % len(revealable)]
            sim.ask(
                person,
                Verb.REVEAL,
                customer,
                (field,),
                at + dt.timedelta(seconds=60),
                person.desk_ip,
                desk,
                interaction,
                reason=f"{purpose}: caller asked",
            )
            revealed = (field,)
        call = Call(person, customer, opened, interaction, purpose, revealable, revealed, day)
        for hook in sim.call_hooks:
            hook(call)
        sim.gateway.close_interaction(interaction, closed)


def _crm_events(sim: Sim, start: InteractionStart, closed: dt.datetime) -> None:
    """What the CRM's own log says of a call: when it was opened and closed, and why.

    Written as lake rows (COLUMNS order), the values ``emit`` would give the two
    Events: half of all the simulator's events are these, and an Event each cost
    more than the rest of the call.
    """
    first = sim.next_event
    sim.next_event += 2
    prefix = f"sim-{sim.seed}-"
    target = f"interaction:{start.id}"
    staff, customer, site, iid, purpose = (
        start.staff_id, start.customer_id, start.site_id, start.id, start.purpose,
    )  # fmt: skip
    sim.lake.write_rows(
        (
            (f"{prefix}{first}", start.at, "crm", Action.INTERACTION_OPEN, staff, None, target,
             customer, None, None, site, Outcome.SUCCESS, [], iid, purpose, [],
             None, None, None, None, None, None, None),
            (f"{prefix}{first + 1}", closed, "crm", Action.INTERACTION_CLOSE, staff, None, target,
             customer, None, None, site, Outcome.SUCCESS, [], iid, purpose, [],
             None, None, None, None, None, None, None),
        )
    )  # fmt: skip


def _logon_logoff(sim: Sim, person: Person, start: dt.datetime, day: Day) -> None:
    jitter = dt.timedelta(minutes=float(day.rng.normal(-8, 6)))
    common: dict[str, Any] = {
        "source": "edr",
        "actor": person.id,
        "account": person.id,
        "src_ip": person.desk_ip,
        "device_id": person.devices[0],
        "site_id": person.site,
        "outcome": Outcome.SUCCESS,
    }
    sim.emit(time=start + jitter, action=Action.LOGON, **common)
    # Outlook and Teams on the desktop sign in to the person's own account after the logon.
    _own_signin(
        sim, person, start + jitter + dt.timedelta(minutes=2), person.desk_ip, "Microsoft Outlook",
        person.devices[0],
    )  # fmt: skip
    end = start + dt.timedelta(hours=SHIFT_HOURS, minutes=float(day.rng.normal(5, 8)))
    sim.emit(time=end, action=Action.LOGOFF, **common)


def _staff_turnover(sim: Sim, day: Day) -> None:
    """Ordinary churn: some agents give notice; those whose notice ends leave, replaced."""
    noon = dt.datetime.combine(day.date, dt.time(12), tzinfo=dt.UTC)
    for team in sim.world.teams:
        for agent_id in list(team.agents):
            person = sim.world.people[agent_id]
            if person.id in sim.cast:
                continue  # a scenario decides what happens to its cast
            if person.left is None and person.notice_given is None:
                if day.rng.random() < NOTICE_RATE:
                    give_notice(sim, person, day.date, day.date + dt.timedelta(NOTICE_DAYS))
            elif person.left == day.date:
                leave(sim, person, noon, returns_devices=True)
                _replace(sim, team, person, day)


def give_notice(sim: Sim, person: Person, date: dt.date, leaving: dt.date) -> None:
    """Record that a person gave notice and when they will leave."""
    person.notice_given = date
    person.left = leaving
    at = dt.datetime.combine(date, dt.time(10), tzinfo=dt.UTC)
    sim.emit(
        time=at,
        source="hr",
        action=Action.HR_NOTICE,
        actor=person.id,
        outcome=Outcome.SUCCESS,
        raw=json.dumps({"leaving_date": leaving.isoformat()}),
    )


def leave(sim: Sim, person: Person, at: dt.datetime, returns_devices: bool) -> None:
    """A person leaves; their devices come back unless returns_devices is False."""
    sim.emit(time=at, source="hr", action=Action.HR_LEAVE, actor=person.id, outcome=Outcome.SUCCESS)
    sim.hr_changes.append(("left", person.id, at.date()))
    if not returns_devices:
        return
    for device in person.devices:
        sim.world.devices[device].holder = ""
        sim.emit(
            time=at + dt.timedelta(hours=1),
            source="assets",
            action=Action.ASSET_RETURN,
            actor=person.id,
            device_id=device,
            outcome=Outcome.SUCCESS,
        )


def _replace(sim: Sim, team: Team, leaver: Person, day: Day) -> None:
    newcomer = hire_replacement(sim.world, leaver, day.date, day.rng)
    team.agents.append(newcomer.id)
    at = dt.datetime.combine(day.date, dt.time(9), tzinfo=dt.UTC)
    sim.emit(
        time=at,
        source="hr",
        action=Action.HR_JOIN,
        actor=newcomer.id,
        site_id=newcomer.site,
        outcome=Outcome.SUCCESS,
    )
    sim.hr_changes.append(("joined", newcomer.id, day.date))
    for device in newcomer.devices:
        record: DeviceRecord = sim.world.devices[device]
        sim.emit(
            time=at + dt.timedelta(hours=1),
            source="assets",
            action=Action.ASSET_ISSUE,
            actor=newcomer.id,
            device_id=record.id,
            outcome=Outcome.SUCCESS,
        )


def is_agent(person: Person) -> bool:
    return person.role is StaffRole.AGENT
