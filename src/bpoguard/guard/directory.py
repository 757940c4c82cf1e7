"""What the guard knows about people, devices, sites and contracts, read once.

A decision needs a dozen facts about the requester; reading them row by row
on every request would cost more than the decision. The directory loads the
slowly-changing ones (staff, devices, sites, shifts, contracts, purposes) in
one pass and answers from memory; `Guard.refresh()` reloads it when HR or the
asset register changes something.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.store import models as m

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnknownParty(InputError):
    """A request names a person, device or contract the directory does not know."""


@dataclass(frozen=True)
class StaffInfo:
    id: str
    role: m.StaffRole
    site_id: str | None
    shift: str | None
    notice_given: dt.date | None
    left: dt.date | None


@dataclass(frozen=True)
class DeviceInfo:
    id: str
    holder_id: str | None
    status: m.DeviceStatus


@dataclass(frozen=True)
class SiteInfo:
    id: str
    timezone: ZoneInfo
    networks: tuple[Network, ...]
    shifts: dict[str, tuple[dt.time, dt.time]]  # name -> local start, end (may wrap)


@dataclass(frozen=True)
class PurposeInfo:
    fields: frozenset[FieldType]
    revealable: frozenset[FieldType]


@dataclass(frozen=True)
class ContractInfo:
    id: str
    client_id: str
    allowed_sites: frozenset[str]
    records_per_shift: int
    records_per_hour: int
    reveals_per_shift: int
    off_premises_ban: bool
    purposes: dict[str, PurposeInfo]


@dataclass(frozen=True)
class ShiftWindow:
    name: str
    start: dt.datetime  # UTC
    end: dt.datetime  # UTC


class Directory:
    """Staff, devices, sites and contracts, in memory."""

    def __init__(
        self,
        staff: dict[str, StaffInfo],
        devices: dict[str, DeviceInfo],
        sites: dict[str, SiteInfo],
        contracts: dict[str, ContractInfo],
    ) -> None:
        self._staff = staff
        self._devices = devices
        self._sites = sites
        self._contracts = contracts
        self._by_client = {c.client_id: c for c in contracts.values()}
        self._premises: dict[str, str | None] = {}  # address -> site: agents' desks repeat

    @classmethod
    def load(cls, conn: Connection) -> Directory:
        """Read the directory from the store."""
        return cls(_staff(conn), _devices(conn), _sites(conn), _contracts(conn))

    def staff(self, staff_id: str) -> StaffInfo:
        try:
            return self._staff[staff_id]
        except KeyError:
            raise UnknownParty(f"unknown staff member {staff_id!r}") from None

    def device(self, device_id: str | None) -> DeviceInfo | None:
        return self._devices.get(device_id) if device_id else None

    def site(self, site_id: str | None) -> SiteInfo | None:
        return self._sites.get(site_id) if site_id else None

    def contract(self, contract_id: str) -> ContractInfo:
        try:
            return self._contracts[contract_id]
        except KeyError:
            raise UnknownParty(f"unknown contract {contract_id!r}") from None

    def contract_for_client(self, client_id: str) -> ContractInfo:
        try:
            return self._by_client[client_id]
        except KeyError:
            raise UnknownParty(f"no contract covers client {client_id!r}") from None

    def premises_of(self, address: str) -> str | None:
        """The site whose premises networks hold this address, if any (remembered per address)."""
        try:
            return self._premises[address]
        except KeyError:
            pass
        found = self._find_premises(address)
        if len(self._premises) >= _PREMISES_MEMO:
            self._premises.clear()  # bounded: forged addresses cannot grow it without end
        self._premises[address] = found
        return found

    def _find_premises(self, address: str) -> str | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        for site in self._sites.values():
            if any(ip in network for network in site.networks):
                return site.id
        return None


_PREMISES_MEMO = 65_536


def shift_window(site: SiteInfo, shift: str | None, at: dt.datetime) -> ShiftWindow | None:
    """The person's shift window that contains `at`, in UTC, or None when off shift."""
    if shift is None or shift not in site.shifts:
        return None
    start, end = site.shifts[shift]
    local = at.astimezone(site.timezone)
    length = _length(start, end)
    for day in (local.date(), local.date() - dt.timedelta(days=1)):
        opens = dt.datetime.combine(day, start, tzinfo=site.timezone)
        if opens <= local < opens + length:
            utc = opens.astimezone(dt.UTC)
            return ShiftWindow(shift, utc, utc + length)
    return None


def _length(start: dt.time, end: dt.time) -> dt.timedelta:
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return dt.timedelta(minutes=minutes % (24 * 60) or 24 * 60)


def _staff(conn: Connection) -> dict[str, StaffInfo]:
    rows = conn.execute(select(m.Staff.id, m.Staff.role, m.Staff.site_id, m.Staff.shift,
                               m.Staff.notice_given, m.Staff.left))  # fmt: skip
    return {r.id: StaffInfo(r.id, r.role, r.site_id, r.shift, r.notice_given, r.left) for r in rows}


def _devices(conn: Connection) -> dict[str, DeviceInfo]:
    rows = conn.execute(select(m.Device.id, m.Device.holder_id, m.Device.status))
    return {r.id: DeviceInfo(r.id, r.holder_id, r.status) for r in rows}


def _sites(conn: Connection) -> dict[str, SiteInfo]:
    shifts: dict[str, dict[str, tuple[dt.time, dt.time]]] = {}
    for s in conn.execute(select(m.Shift.site_id, m.Shift.name, m.Shift.start, m.Shift.end)):
        shifts.setdefault(s.site_id, {})[s.name] = (_hhmm(s.start), _hhmm(s.end))
    sites = {}
    for row in conn.execute(select(m.Site.id, m.Site.timezone, m.Site.premises_networks)):
        networks = tuple(ipaddress.ip_network(n) for n in row.premises_networks)
        sites[row.id] = SiteInfo(row.id, ZoneInfo(row.timezone), networks, shifts.get(row.id, {}))
    return sites


def _contracts(conn: Connection) -> dict[str, ContractInfo]:
    purposes: dict[str, dict[str, PurposeInfo]] = {}
    rows = conn.execute(
        select(m.Purpose.contract_id, m.Purpose.name, m.Purpose.fields, m.Purpose.revealable)
    )
    for p in rows:
        purposes.setdefault(p.contract_id, {})[p.name] = PurposeInfo(
            frozenset(FieldType(f) for f in p.fields), frozenset(FieldType(f) for f in p.revealable)
        )
    c = m.Contract
    columns = (c.id, c.client_id, c.allowed_sites, c.records_per_shift, c.records_per_hour,
               c.reveals_per_shift, c.off_premises_ban)  # fmt: skip
    return {
        r.id: ContractInfo(
            id=r.id,
            client_id=r.client_id,
            allowed_sites=frozenset(r.allowed_sites),
            records_per_shift=r.records_per_shift,
            records_per_hour=r.records_per_hour,
            reveals_per_shift=r.reveals_per_shift,
            off_premises_ban=r.off_premises_ban,
            purposes=purposes.get(r.id, {}),
        )
        for r in conn.execute(select(*columns))
    }


def _hhmm(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours) % 24, int(minutes))
