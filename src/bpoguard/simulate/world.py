"""The cast of a simulated BPO: clients, sites, contracts, teams, staff, devices.

Built deterministically from the seed. Addresses come from the documentation
ranges (RFC 5737) and private ranges, so no real network is ever named.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
from faker import Faker

from bpoguard.fields import FieldType as F
from bpoguard.store.models import DeviceKind, StaffRole

PROVIDER_ID = "org-meridian"
RIVAL_ID = "org-vantage"
RIVAL_NETWORK = "198.51.100.0/24"  # TEST-NET-2: the rival BPO's offices
# Staff's home broadband: the RFC 2544 benchmarking range (never routed), wide enough
# that every home has its own address, as a household's broadband line does.
HOME_BROADBAND = "198.18.0.0/15"
# Mobile data: carriers put phones behind carrier-grade NAT, so one public address
# serves many subscribers at once. RFC 6598 shared address space, a small pool.
MOBILE_CARRIER = "100.64.0.0/22"
# Staff with Outlook and Teams on a personal phone (BYOD); it signs in to their own
# account from home Wi-Fi or mobile data, never on the floor (phones stay in lockers).
PHONE_APPS_SHARE = 0.8
TEAM_SIZE = 12


@dataclass(frozen=True, eq=False)
class ClientSpec:
    id: str
    name: str
    country: str  # of its customers
    timezone: str  # where its customers live: calls follow their day
    open_hour: int  # customers call from this local hour...
    close_hour: int  # ...to this one
    share: float  # of customers and of agents
    sites: tuple[str, ...]
    purposes: dict[str, tuple[tuple[F, ...], tuple[F, ...]]]  # name -> (fields, revealable)


@dataclass(frozen=True)
class SiteSpec:
    id: str
    name: str
    city: str
    country: str
    timezone: str
    network: str  # premises CIDR


SITES = (
    SiteSpec("DEL-1", "Meridian New Delhi", "New Delhi", "IN", "Asia/Kolkata", "10.11.0.0/16"),
    SiteSpec("MUM-1", "Meridian Mumbai", "Mumbai", "IN", "Asia/Kolkata", "10.12.0.0/16"),
    SiteSpec("KOL-1", "Meridian Kolkata", "Kolkata", "IN", "Asia/Kolkata", "10.13.0.0/16"),
    SiteSpec("MNL-1", "Meridian Manila", "Manila", "PH", "Asia/Manila", "10.21.0.0/16"),
    SiteSpec(
        "CPT-1", "Meridian Cape Town", "Cape Town", "ZA", "Africa/Johannesburg", "10.31.0.0/16"
    ),
)

_BANK_PURPOSES = {
    "balance_enquiry": (
        (F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.SORT_CODE, F.ACCOUNT_NUMBER, F.BALANCE),
        (F.BALANCE,),
    ),
    "card_services": ((F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.CARD_NUMBER), ()),
    "address_change": ((F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.PHONE, F.EMAIL), (F.ADDRESS,)),
    "fraud_report": (
        (F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.PHONE, F.CARD_NUMBER, F.ACCOUNT_NUMBER),
        (F.PHONE,),
    ),
}
_TELCO_PURPOSES = {
    # The agent may reveal the number on file to confirm a callback or SMS number.
    "billing_enquiry": ((F.NAME, F.ADDRESS, F.PHONE, F.BALANCE), (F.BALANCE, F.PHONE)),
    "technical_support": ((F.NAME, F.ADDRESS, F.PHONE), (F.PHONE,)),
    # The number for the payment's confirmation text, on file and revealable as for billing.
    "payment": ((F.NAME, F.ADDRESS, F.PHONE, F.CARD_NUMBER, F.BALANCE), (F.BALANCE, F.PHONE)),
}
_COLLECTIONS_PURPOSES = {
    "debt_collection": (
        (F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.PHONE, F.EMAIL, F.BALANCE),
        (F.PHONE, F.BALANCE),
    ),
    "payment_plan": ((F.NAME, F.ADDRESS, F.PHONE, F.ACCOUNT_NUMBER, F.BALANCE), (F.BALANCE,)),
}
_LENDER_PURPOSES = {
    "loan_servicing": (
        (F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.PHONE, F.PAN, F.ACCOUNT_NUMBER, F.BALANCE),
        (F.BALANCE,),
    ),
    "kyc_update": ((F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.PAN, F.EMAIL), (F.ADDRESS, F.EMAIL)),
}

CLIENTS = (
    ClientSpec(
        "org-albion",
        "Albion Bank plc",
        "GB",
        "Europe/London",
        8,
        20,
        0.40,
        ("DEL-1", "MUM-1", "CPT-1"),
        _BANK_PURPOSES,
    ),
    ClientSpec(
        "org-lakeshore",
        "Lakeshore Wireless",
        "US",
        "America/New_York",
        8,
        22,
        0.25,
        ("MNL-1", "KOL-1"),
        _TELCO_PURPOSES,
    ),
    ClientSpec(
        "org-hudson",
        "Hudson Recovery LLC",
        "US",
        "America/New_York",
        9,
        18,
        0.15,
        ("MUM-1",),
        _COLLECTIONS_PURPOSES,
    ),
    ClientSpec(
        "org-bharat",
        "Bharat Finserve",
        "IN",
        "Asia/Kolkata",
        9,
        19,
        0.20,
        ("KOL-1", "DEL-1"),
        _LENDER_PURPOSES,
    ),
)


@dataclass
class Person:
    id: str
    name: str
    role: StaffRole
    site: str
    client: str  # the client whose work the person's team does
    team: str
    supervisor: str | None
    joined: dt.date
    desk_ip: str  # the workstation's address on the premises network
    home_ip: str  # where the person connects from outside
    days_off: tuple[int, int]  # weekdays (Mon=0) not worked
    phone_apps: bool = False  # work apps on a personal phone: own sign-ins from home
    contact_habit: float = 1.0  # how often this agent reveals a contact field, against the norm
    notice_given: dt.date | None = None
    left: dt.date | None = None
    devices: list[str] = field(default_factory=list)


@dataclass
class DeviceRecord:
    id: str
    kind: DeviceKind
    site: str
    holder: str
    issued: dt.date


@dataclass
class Team:
    id: str
    site: str
    client: str
    start_hour: int  # shift start, site-local hour
    supervisor: str
    agents: list[str]


@dataclass
class World:
    """Everything the engine needs to play out days; plain data."""

    start: dt.date
    people: dict[str, Person]
    teams: list[Team]
    devices: dict[str, DeviceRecord]
    customer_ranges: dict[str, tuple[int, int]]  # client -> [first id, last id + 1)
    mailboxes: dict[str, list[str]]  # shared mailbox address -> holders
    names: list[str]  # pool of staff names

    def client(self, client_id: str) -> ClientSpec:
        return next(c for c in CLIENTS if c.id == client_id)

    def site(self, site_id: str) -> SiteSpec:
        return next(s for s in SITES if s.id == site_id)


def build(agents: int, customers: int, start: dt.date, rng: np.random.Generator) -> World:
    """Cast the world: customers split by client, agents into teams of twelve."""
    names = _staff_names(rng, agents + agents // TEAM_SIZE + len(CLIENTS) * 8)
    world = World(
        start=start,
        people={},
        teams=[],
        devices={},
        customer_ranges=_customer_ranges(customers),
        mailboxes={},
        names=names,
    )
    for client, count in zip(CLIENTS, _agents_per_client(agents), strict=True):
        for site, site_count in _split(count, client.sites).items():
            _staff_site(world, client, site, site_count, rng)
    return world


def _customer_ranges(customers: int) -> dict[str, tuple[int, int]]:
    ranges = {}
    first = 1
    counts = _largest_remainder(customers, [c.share for c in CLIENTS])
    for client, count in zip(CLIENTS, counts, strict=True):
        ranges[client.id] = (first, first + count)
        first += count
    return ranges


def _agents_per_client(agents: int) -> list[int]:
    return _largest_remainder(agents, [c.share for c in CLIENTS])


def _split(count: int, sites: tuple[str, ...]) -> dict[SiteSpec, int]:
    # The first site listed carries the most work, as a client's main site does.
    weights = [2.0 if i == 0 else 1.0 for i in range(len(sites))]
    counts = _largest_remainder(count, weights)
    by_id = {s.id: s for s in SITES}
    return {by_id[s]: n for s, n in zip(sites, counts, strict=True) if n > 0}


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    shares = np.array(weights) / sum(weights) * total
    counts = np.floor(shares).astype(int)
    for i in np.argsort(-(shares - counts))[: total - counts.sum()]:
        counts[i] += 1
    return [int(c) for c in counts]


def _staff_site(
    world: World,
    client: ClientSpec,
    site: SiteSpec,
    count: int,
    rng: np.random.Generator,
) -> None:
    start_hour = _shift_start(client, site)
    for t in range(0, count, TEAM_SIZE):
        team_id = (
            f"{site.id}-{client.id.removeprefix('org-').upper()[:4]}-T{t // TEAM_SIZE + 1:02d}"
        )
        supervisor = _hire(world, StaffRole.SUPERVISOR, site, client, team_id, None, rng)
        members = [
            _hire(world, StaffRole.AGENT, site, client, team_id, supervisor.id, rng).id
            for _ in range(min(TEAM_SIZE, count - t))
        ]
        world.teams.append(Team(team_id, site.id, client.id, start_hour, supervisor.id, members))


def _shift_start(client: ClientSpec, site: SiteSpec) -> int:
    """Site-local hour a team starts so that its 9-hour shift covers the client's busy hours."""
    noon = dt.datetime(2026, 1, 15, 12, tzinfo=ZoneInfo(client.timezone))
    # Centre the shift on the middle of the client's calling day, in site time.
    middle = noon.replace(hour=(client.open_hour + client.close_hour) // 2)
    local = middle.astimezone(ZoneInfo(site.timezone))
    return (local.hour - 4) % 24


def _hire(
    world: World,
    role: StaffRole,
    site: SiteSpec,
    client: ClientSpec,
    team: str,
    supervisor: str | None,
    rng: np.random.Generator,
    joined: dt.date | None = None,
) -> Person:
    number = len(world.people) + 1
    prefix = "S" if role is StaffRole.SUPERVISOR else "A"
    person_id = f"{site.id.replace('-', '')}-{prefix}{number:05d}"
    if joined is None:
        joined = world.start - dt.timedelta(days=int(rng.integers(30, 2000)))
    first_off = int(rng.integers(0, 7))
    person = Person(
        id=person_id,
        name=world.names[number % len(world.names)],
        role=role,
        site=site.id,
        client=client.id,
        team=team,
        supervisor=supervisor,
        joined=joined,
        desk_ip=address_in(site.network, number),
        # One address per home: a stride over the range, the offset drawn.
        home_ip=address_in(HOME_BROADBAND, number * 37 + int(rng.integers(0, 37))),
        days_off=(first_off, (first_off + 1) % 7),
        phone_apps=bool(rng.random() < PHONE_APPS_SHARE),
        # Some agents check the number on file more than others: a spread around 1.
        contact_habit=float(rng.gamma(8.0, 1 / 8.0)),
    )
    world.people[person_id] = person
    desktop = f"DT-{site.id}-{number:05d}"
    world.devices[desktop] = DeviceRecord(desktop, DeviceKind.DESKTOP, site.id, person_id, joined)
    person.devices.append(desktop)
    if role is StaffRole.SUPERVISOR or rng.random() < 0.1:
        laptop = f"LT-{site.id}-{number:05d}"
        world.devices[laptop] = DeviceRecord(laptop, DeviceKind.LAPTOP, site.id, person_id, joined)
        person.devices.append(laptop)
    return person


def hire_replacement(
    world: World, leaver: Person, joined: dt.date, rng: np.random.Generator
) -> Person:
    """Hire an agent into a leaver's team, starting on `joined`."""
    return _hire(
        world,
        StaffRole.AGENT,
        world.site(leaver.site),
        world.client(leaver.client),
        leaver.team,
        leaver.supervisor,
        rng,
        joined,
    )


def address_in(cidr: str, n: int) -> str:
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + 1 + n % (network.num_addresses - 2))


def _staff_names(rng: np.random.Generator, count: int) -> list[str]:
    faker = Faker(["en_IN", "en_PH", "en_GB"])
    faker.seed_instance(int(rng.integers(0, 2**31)))
    return [faker.name() for _ in range(min(count, 5000))]
