"""The crimes from the seed stories, injected into a simulated world.

Each scenario picks its cast when the run starts, acts on the days it is
active, and says afterwards, in the ground truth, who did what and when.

- harvester: an agent reads far more customers than calls justify, at odd
  hours, revealing bank, card and passport fields (the New Delhi sale).
- mailbox: a client's shared mailboxes, whose password was handed to staff,
  are signed into from outside the premises and from a rival firm, and their
  passwords changed (the Mumbai debt-collector case).
- leaver: an agent exports the client list, leaves, keeps the laptop, and goes
  on connecting and reading records after the leaving date.
- ring: agents note the customers they serve; those customers later report
  scam calls (the Kolkata telco case).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np

from bpoguard.access import Verb
from bpoguard.errors import InputError
from bpoguard.events.schema import Action, Outcome
from bpoguard.fields import FieldType as F
from bpoguard.simulate.engine import Call, Day, Sim, give_notice, is_agent, leave
from bpoguard.simulate.world import RIVAL_NETWORK, DeviceRecord, Person, address_in
from bpoguard.store.models import DeviceKind


class Scenario(Protocol):
    name: ClassVar[str]

    def cast(self, sim: Sim, days: int, rng: np.random.Generator) -> None: ...

    def play(self, sim: Sim, day: Day) -> None: ...

    def truth(self) -> dict[str, Any]: ...


def _at(date: dt.date, hour: float, tz_offset_hours: float = 0.0) -> dt.datetime:
    base = dt.datetime.combine(date, dt.time(0), tzinfo=dt.UTC)
    return base + dt.timedelta(hours=hour - tz_offset_hours)


def _agents_of(sim: Sim, client: str, site: str | None = None, need: int = 1) -> list[Person]:
    """Agents of a client's teams not yet cast elsewhere; a site's, if it has `need` of them."""
    pool = [
        p
        for p in sim.world.people.values()
        if is_agent(p) and p.client == client and p.left is None and p.id not in sim.cast
    ]
    at_site = [p for p in pool if p.site == site]
    return at_site if len(at_site) >= need else pool


@dataclass
class Harvester:
    """The bulk harvester of the New Delhi story."""

    name: ClassVar[str] = "harvester"
    client: str = "org-albion"
    site: str = "DEL-1"
    rate: int = 120  # customers harvested a night, on average
    start_day: int = -1  # -1: a quarter of the way in
    person: str = ""
    first_act: str = ""
    customers: list[int] = field(default_factory=list)

    FIELDS: ClassVar = (
        F.SORT_CODE,
        F.ACCOUNT_NUMBER,
        F.CARD_NUMBER,
        F.PASSPORT_NUMBER,
        F.DRIVING_LICENCE,
    )

    def cast(self, sim: Sim, days: int, rng: np.random.Generator) -> None:
        pool = _agents_of(sim, self.client, self.site)
        self.person = pool[int(rng.integers(0, len(pool)))].id
        sim.cast.add(self.person)
        if self.start_day < 0:
            self.start_day = max(1, days // 4)

    def play(self, sim: Sim, day: Day) -> None:
        person = sim.world.people[self.person]
        if day.index < self.start_day or not sim.works(person, day.date):
            return
        n = int(day.rng.poisson(self.rate))
        # 01:00-04:00 in New Delhi (UTC+5:30): long after the shift has ended.
        start = _at(day.date, 1.0 + float(day.rng.random()), tz_offset_hours=5.5)
        victims = sim.uniform_customers(self.client, day.rng, n)
        for i, customer in enumerate(victims):
            at = start + dt.timedelta(seconds=20 * i + float(day.rng.random()) * 10)
            if not self.first_act:
                self.first_act = at.isoformat()
            desk = person.devices[0]
            sim.ask(person, Verb.VIEW, int(customer), (F.NAME, F.ADDRESS), at, person.desk_ip, desk)
            sim.ask(
                person,
                Verb.REVEAL,
                int(customer),
                self.FIELDS,
                at + dt.timedelta(seconds=5),
                person.desk_ip,
                desk,
                reason="customer called back",
            )
            self.customers.append(int(customer))

    def truth(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "persons": [self.person],
            "first_act": self.first_act,
            "client": self.client,
            "fields": [f.value for f in self.FIELDS],
            "customers": sorted(set(self.customers)),
        }


@dataclass
class Mailbox:
    """Shared client mailboxes taken over from outside, as in the Mumbai case."""

    name: ClassVar[str] = "mailbox"
    client: str = "org-hudson"
    domain: str = "hudson-recovery.example"
    holders_count: int = 5
    start_day: int = -1  # -1: half way in
    holders: list[str] = field(default_factory=list)
    insider: str = ""
    first_act: str = ""
    mailboxes: list[str] = field(default_factory=list)

    def cast(self, sim: Sim, days: int, rng: np.random.Generator) -> None:
        pool = _agents_of(sim, self.client)
        chosen = rng.choice(len(pool), size=min(self.holders_count, len(pool)), replace=False)
        self.holders = [pool[int(i)].id for i in chosen]
        # The one who opens the mailboxes at home does so on a home device that also
        # carries their own work apps (the means); failing that, the first holder.
        self.insider = next(
            (h for h in self.holders if sim.world.people[h].phone_apps), self.holders[0]
        )
        sim.cast.add(self.insider)
        self.mailboxes = [
            f"{box}@{self.domain}" for box in ("collections", "disputes", "payments", "accounts")
        ]
        for box in self.mailboxes:
            sim.world.mailboxes[box] = list(self.holders)
        if self.start_day < 0:
            self.start_day = max(1, days // 2)

    def play(self, sim: Sim, day: Day) -> None:
        for holder in self.holders:
            person = sim.world.people[holder]
            if sim.works(person, day.date):
                self._routine_signins(sim, person, day)
        if day.index == self.start_day:
            self._takeover(sim, day)

    def _routine_signins(self, sim: Sim, person: Person, day: Day) -> None:
        team = next(t for t in sim.world.teams if t.id == person.team)
        start = sim.shift_start(team, day.date)
        for box in day.rng.choice(self.mailboxes, size=2, replace=False):
            at = start + dt.timedelta(minutes=float(day.rng.uniform(5, 400)))
            self._signin(sim, str(box), at, person.desk_ip, Outcome.SUCCESS, person.devices[0])

    def _takeover(self, sim: Sim, day: Day) -> None:
        insider = sim.world.people[self.insider]
        night = _at(day.date, 23.0, tz_offset_hours=5.5)
        self.first_act = night.isoformat()
        for i, box in enumerate(self.mailboxes):
            self._signin(
                sim,
                box,
                night + dt.timedelta(minutes=3 * i),
                insider.home_ip,
                Outcome.SUCCESS,
                None,
            )
        rival_ip = address_in(RIVAL_NETWORK, int(day.rng.integers(10, 200)))
        next_day = night + dt.timedelta(hours=14)
        for i, box in enumerate(self.mailboxes):
            at = next_day + dt.timedelta(minutes=7 * i)
            self._signin(sim, box, at, rival_ip, Outcome.SUCCESS, None)
            sim.emit(
                time=at + dt.timedelta(minutes=2),
                source="m365",
                action=Action.PASSWORD_CHANGE,
                actor=box,
                account=box,
                target=box,
                src_ip=rival_ip,
                outcome=Outcome.SUCCESS,
            )
        # The staff's own sign-ins now fail: the password is no longer theirs.
        for i, holder in enumerate(self.holders):
            person = sim.world.people[holder]
            at = next_day + dt.timedelta(hours=2, minutes=5 * i)
            self._signin(
                sim,
                self.mailboxes[i % len(self.mailboxes)],
                at,
                person.desk_ip,
                Outcome.FAILURE,
                person.devices[0],
            )

    def _signin(
        self, sim: Sim, box: str, at: dt.datetime, ip: str, outcome: Outcome, device: str | None
    ) -> None:
        sim.emit(
            time=at,
            source="m365",
            action=Action.MAILBOX_SIGNIN,
            actor=box,
            account=box,
            target=box,
            src_ip=ip,
            device_id=device,
            outcome=outcome,
        )

    def truth(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "persons": [self.insider],
            "first_act": self.first_act,
            "client": self.client,
            "accounts": self.mailboxes,
            "holders": self.holders,
            "rival_network": RIVAL_NETWORK,
        }


@dataclass
class Leaver:
    """An agent who takes the client list, leaves, and keeps the laptop."""

    name: ClassVar[str] = "leaver"
    client: str = "org-hudson"
    notice_day: int = -1  # -1: a fifth of the way in
    notice_days: int = -1  # -1: 14 days, or less so that the leaving falls inside the run
    export_size: int = 400
    person: str = ""
    laptop: str = ""
    left: str = ""
    first_act: str = ""
    customers: list[int] = field(default_factory=list)

    def cast(self, sim: Sim, days: int, rng: np.random.Generator) -> None:
        pool = _agents_of(sim, self.client)
        person = pool[int(rng.integers(0, len(pool)))]
        self.person = person.id
        sim.cast.add(person.id)
        self.laptop = next((d for d in person.devices if d.startswith("LT-")), "")
        if not self.laptop:
            self.laptop = f"LT-{person.site}-{person.id[-5:]}"
            sim.world.devices[self.laptop] = DeviceRecord(
                self.laptop, DeviceKind.LAPTOP, person.site, person.id, person.joined
            )
            person.devices.append(self.laptop)
        if self.notice_day < 0:
            self.notice_day = max(1, days // 5)
        if self.notice_days < 0:
            self.notice_days = max(1, min(14, days - self.notice_day - 3))

    def play(self, sim: Sim, day: Day) -> None:
        person = sim.world.people[self.person]
        if day.index == self.notice_day:
            give_notice(sim, person, day.date, day.date + dt.timedelta(self.notice_days))
            self.left = (day.date + dt.timedelta(self.notice_days)).isoformat()
        if not self.left:
            return
        left = dt.date.fromisoformat(self.left)
        if day.date == left - dt.timedelta(days=1):
            self._export(sim, person, day)
        if day.date == left:
            leave(sim, person, _at(day.date, 12.0), returns_devices=False)
            desk = person.devices[0]
            sim.emit(
                time=_at(day.date, 13.0),
                source="assets",
                action=Action.ASSET_RETURN,
                actor=person.id,
                device_id=desk,
                outcome=Outcome.SUCCESS,
            )
        if day.date > left:
            self._after_leaving(sim, person, day)

    def _export(self, sim: Sim, person: Person, day: Day) -> None:
        at = _at(day.date, 17.0)
        if not self.first_act:
            self.first_act = at.isoformat()
        for i, customer in enumerate(sim.uniform_customers(self.client, day.rng, self.export_size)):
            sim.ask(
                person,
                Verb.EXPORT,
                int(customer),
                (F.NAME, F.PHONE, F.EMAIL, F.BALANCE),
                at + dt.timedelta(seconds=i),
                person.desk_ip,
                self.laptop,
                reason="working from home list",
            )
            self.customers.append(int(customer))

    def _after_leaving(self, sim: Sim, person: Person, day: Day) -> None:
        evening = _at(day.date, 20.0 + float(day.rng.random()), tz_offset_hours=5.5)
        sim.emit(
            time=evening,
            source="edr",
            action=Action.DEVICE_CONNECT,
            actor=person.id,
            account=person.id,
            device_id=self.laptop,
            src_ip=person.home_ip,
            outcome=Outcome.SUCCESS,
        )
        for i, customer in enumerate(sim.uniform_customers(self.client, day.rng, 15)):
            sim.ask(
                person,
                Verb.VIEW,
                int(customer),
                (F.NAME, F.PHONE, F.BALANCE),
                evening + dt.timedelta(minutes=2 + i),
                person.home_ip,
                self.laptop,
            )
            self.customers.append(int(customer))

    def truth(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "persons": [self.person],
            "first_act": self.first_act,
            "client": self.client,
            "device": self.laptop,
            "left": self.left,
            "customers": sorted(set(self.customers)),
        }


@dataclass
class Ring:
    """Agents whose customers later get scam calls, as in the Kolkata telco case."""

    name: ClassVar[str] = "ring"
    client: str = "org-lakeshore"
    site: str = "KOL-1"
    size: int = 3
    mark_rate: float = 0.4  # share of the noted callers who are later scammed
    note_rate: float = 0.8  # share of the calls on which a member notes the caller's number
    noise: float = 1.0  # unrelated complaints, as a multiple of the ring's
    members: list[str] = field(default_factory=list)
    first_act: str = ""
    victims: dict[int, str] = field(default_factory=dict)  # customer -> date reported
    background: dict[int, str] = field(default_factory=dict)
    noted: set[int] = field(default_factory=set)  # customers whose number a member took
    first_acts: dict[str, str] = field(default_factory=dict)  # member -> their first note
    _sim: Any = field(default=None, repr=False)

    CONTACT: ClassVar = (F.PHONE, F.EMAIL)

    def cast(self, sim: Sim, days: int, rng: np.random.Generator) -> None:
        pool = _agents_of(sim, self.client, self.site, need=self.size)
        chosen = rng.choice(len(pool), size=min(self.size, len(pool)), replace=False)
        self.members = [pool[int(i)].id for i in chosen]
        sim.cast.update(self.members)
        self._sim = sim
        sim.call_hooks.append(self._on_call)

    def _on_call(self, call: Call) -> None:
        """A member notes a caller's number: it is masked, so they reveal it.

        The ring collects numbers from many callers (``note_rate`` of the calls
        where it can) and its callers later ring some of them (``mark_rate`` of
        those noted). Only on calls whose purpose lets an agent reveal a
        contact field (the guard would refuse any other), with the reason
        agents give; when the agent already revealed it, nothing more is needed.
        """
        if call.person.id not in self.members or call.customer in self.noted:
            return
        contact = next((f for f in self.CONTACT if f in call.revealable), None)
        rng = call.day.rng
        if contact is None or rng.random() >= self.note_rate:
            return
        at = call.opened + dt.timedelta(seconds=float(rng.uniform(70, 200)))
        if not self.first_act:
            self.first_act = at.isoformat()
        self.first_acts.setdefault(call.person.id, at.isoformat())
        self.noted.add(call.customer)
        if contact not in call.revealed:
            person = call.person
            self._sim.ask(
                person,
                Verb.REVEAL,
                call.customer,
                (contact,),
                at,
                person.desk_ip,
                person.devices[0],
                call.interaction,
                reason=f"{call.purpose}: confirm callback number",
            )
        # Both drawn whatever the rate: the world does not change with mark_rate.
        scammed, delay = rng.random() < self.mark_rate, int(rng.integers(3, 21))
        if scammed:
            reported = call.opened.date() + dt.timedelta(days=delay)
            self.victims[call.customer] = reported.isoformat()

    def play(self, sim: Sim, day: Day) -> None:
        rate = self.noise * len(self.victims) / max(1, day.index + 1)
        for customer in sim.uniform_customers(self.client, day.rng, int(day.rng.poisson(rate))):
            reported = day.date + dt.timedelta(days=int(day.rng.integers(3, 21)))
            self.background.setdefault(int(customer), reported.isoformat())

    def complaints(self) -> list[tuple[int, str, bool]]:
        """(customer, date reported, from the ring) for every complaint, by date."""
        rows = [(c, d, True) for c, d in self.victims.items()]
        rows += [(c, d, False) for c, d in self.background.items() if c not in self.victims]
        return sorted(rows, key=lambda r: (r[1], r[0]))

    def truth(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "persons": self.members,
            "first_act": self.first_act,
            "first_acts": dict(sorted(self.first_acts.items())),
            "client": self.client,
            "victims": sorted(self.victims),
            "complaints_file": "complaints.csv",
        }


SCENARIOS: dict[str, type[Harvester] | type[Mailbox] | type[Leaver] | type[Ring]] = {
    cls.name: cls for cls in (Harvester, Mailbox, Leaver, Ring)
}


def parse(names: str, settings: list[str]) -> list[Scenario]:
    """Build scenarios from "harvester,ring" (or "all", "none") and "ring.size=4" settings."""
    chosen = (
        list(SCENARIOS)
        if names.strip() == "all"
        else [n.strip() for n in names.split(",") if n.strip() and n.strip() != "none"]
    )
    unknown = [n for n in chosen if n not in SCENARIOS]
    if unknown:
        raise InputError(
            f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}, all, none"
        )
    params: dict[str, dict[str, str]] = {n: {} for n in chosen}
    for setting in settings:
        key, sep, value = setting.partition("=")
        scenario, dot, param = key.strip().partition(".")
        if not sep or not dot:
            raise InputError(
                f"scenario setting {setting!r} is not of the form scenario.param=value"
            )
        if scenario not in params:
            raise InputError(
                f"setting {setting!r} is for scenario {scenario!r}, which is not chosen"
            )
        params[scenario][param] = value.strip()
    return [_build(SCENARIOS[n], params[n]) for n in chosen]


_TUNABLE = {
    "rate",
    "start_day",
    "holders_count",
    "notice_day",
    "notice_days",
    "export_size",
    "size",
    "mark_rate",
    "note_rate",
    "noise",
    "client",
    "site",
}


def _build(cls: type[Any], params: dict[str, str]) -> Scenario:
    types = {f.name: f.type for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, raw in params.items():
        if key not in _TUNABLE or key not in types:
            tunable = sorted(k for k in types if k in _TUNABLE)
            raise InputError(
                f"scenario {cls.name} has no setting {key!r}; it has: {', '.join(tunable)}"
            )
        kind = types[key]
        try:
            kwargs[key] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
        except ValueError:
            raise InputError(f"scenario setting {cls.name}.{key} must be a {kind}") from None
    scenario: Scenario = cls(**kwargs)
    return scenario
