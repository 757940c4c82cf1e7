"""Who the people are: role, team, site, supervisor and shift, and the premises networks.

Detection compares a person with their own past and with their peers (same
role, team, site), and needs their shift to say what is out of hours. The
store's directory gives all of it for a guarded BPO; for imported data
(CERT's LDAP snapshots) the importer's people table does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
from sqlalchemy import Connection, select

from bpoguard.store import models as m

# Without a known shift, office hours are 07:00-19:00 UTC: wide enough for a normal day.
DEFAULT_SHIFT_START = 7 * 60
DEFAULT_SHIFT_MINUTES = 12 * 60

PEOPLE_SCHEMA = pa.schema(
    [
        ("person", pa.string()),
        ("role", pa.string()),
        ("team", pa.string()),
        ("site", pa.string()),
        ("supervisor", pa.string()),
        ("shift_start", pa.int64()),  # minute of the UTC day the shift starts
        ("shift_minutes", pa.int64()),
    ]
)
NETWORK_SCHEMA = pa.schema([("net24", pa.string()), ("premises", pa.string())])


@dataclass(frozen=True)
class Person:
    """One person as detection sees them."""

    person: str
    role: str | None = None
    team: str | None = None
    site: str | None = None
    supervisor: str | None = None
    shift_start: int = DEFAULT_SHIFT_START
    shift_minutes: int = DEFAULT_SHIFT_MINUTES


@dataclass(frozen=True)
class Directory:
    """The people and the premises networks (site -> CIDRs) detection runs against."""

    people: tuple[Person, ...] = ()
    premises: tuple[tuple[str, str], ...] = ()  # (site, CIDR)
    holders: tuple[tuple[str, str], ...] = ()  # (shared account, person it was given to)

    def people_table(self) -> pa.Table:
        """People as an Arrow table (for the engine to join)."""
        rows = [p.__dict__ for p in self.people] if self.people else []
        return pa.Table.from_pylist(rows, schema=PEOPLE_SCHEMA)

    def network_table(self) -> pa.Table:
        """Every premises /24 with its site: a join key both engines handle."""
        rows = [
            {"net24": net, "premises": site}
            for site, cidr in self.premises
            for net in _slash24s(cidr)
        ]
        return pa.Table.from_pylist(rows, schema=NETWORK_SCHEMA)

    def by_id(self) -> dict[str, Person]:
        """People by id."""
        return {p.person: p for p in self.people}


def _slash24s(cidr: str) -> list[str]:
    """The /24 prefixes ("10.1.2") covering a network; a longer prefix counts whole."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        return []
    if network.prefixlen >= 24:
        return [".".join(str(network.network_address).split(".")[:3])]
    return [
        ".".join(str(sub.network_address).split(".")[:3]) for sub in network.subnets(new_prefix=24)
    ]


def from_store(conn: Connection, on: dt.date | None = None) -> Directory:
    """The directory of a workspace's store: staff, their shifts, the premises."""
    sites = {s.id: s for s in conn.execute(select(m.Site))}
    shifts = {(s.site_id, s.name): (s.start, s.end) for s in conn.execute(select(m.Shift))}
    day = on or dt.date.today()
    people = []
    for row in conn.execute(select(m.Staff)):
        start, minutes = DEFAULT_SHIFT_START, DEFAULT_SHIFT_MINUTES
        window = shifts.get((row.site_id, row.shift)) if row.shift else None
        site = sites.get(row.site_id) if row.site_id else None
        if window and site:
            start, minutes = _utc_shift(window[0], window[1], site.timezone, day)
        people.append(
            Person(
                person=row.id,
                role=str(row.role.value if hasattr(row.role, "value") else row.role),
                team=row.team,
                site=row.site_id,
                supervisor=row.supervisor_id,
                shift_start=start,
                shift_minutes=minutes,
            )
        )
    premises = [(s.id, cidr) for s in sites.values() for cidr in (s.premises_networks or [])]
    holders = [(a.id, h) for a in conn.execute(select(m.SharedAccount)) for h in (a.holders or [])]
    return Directory(tuple(people), tuple(premises), tuple(holders))


def _utc_shift(start: str, end: str, timezone: str, day: dt.date) -> tuple[int, int]:
    """A local HH:MM-HH:MM shift as (UTC start minute, length in minutes)."""
    h1, m1 = (int(x) for x in start.split(":"))
    h2, m2 = (int(x) for x in end.split(":"))
    local = dt.datetime.combine(day, dt.time(h1, m1), tzinfo=ZoneInfo(timezone))
    utc = local.astimezone(dt.UTC)
    minutes = ((h2 * 60 + m2) - (h1 * 60 + m1)) % 1440 or 1440
    return utc.hour * 60 + utc.minute, minutes


def from_lake(lake_dir: Path) -> list[Person]:
    """People from an imported HR directory (CERT LDAP) in the lake, latest snapshot each."""
    try:
        from bpoguard.events import people as lake_people
    except ImportError:  # the importers' people dimension is not installed in this build
        return []
    if not lake_people.people_dir(lake_dir).exists():
        return []
    rows = lake_people.load(lake_dir).to_pylist()
    latest: dict[str, dict[str, object]] = {}
    for row in sorted(rows, key=lambda r: r["snapshot"]):
        latest[str(row["person"])] = row
    return [
        Person(
            person=person,
            role=_text(row.get("role")),
            team=_team(row),
            site=_text(row.get("department")) or _text(row.get("functional_unit")),
            supervisor=_text(row.get("supervisor")),
        )
        for person, row in sorted(latest.items())
    ]


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _team(row: dict[str, object]) -> str | None:
    # CERT team numbers repeat across departments: the team is the whole path.
    parts = [_text(row.get(k)) for k in ("business_unit", "functional_unit", "department", "team")]
    return "/".join(p or "-" for p in parts) if row.get("team") else None


def directory_for(conn: Connection, lake_dir: Path) -> Directory:
    """The store's directory, with people from an imported HR directory added."""
    store = from_store(conn)
    known = {p.person for p in store.people}
    extra = tuple(p for p in from_lake(lake_dir) if p.person not in known)
    return Directory(store.people + extra, store.premises, store.holders)
