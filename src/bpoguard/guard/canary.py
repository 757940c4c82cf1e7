"""Canary customers: realistic records that no real call ever reaches.

A canary is a customer like any other to everyone but the guard: the same
kind of name, address, card and passport, encrypted in the vault, masked the
same way. No customer calls in as one, so no honest interaction ever opens
it. Each canary can be placed with one agent (in their callback list, their
search results), so that when its details turn up in a dump or someone calls
its phone number, the agent it was shown to is named with certainty.

Everything that happens to a canary is an *exposure*: placed with an agent,
shown in a search result, or touched (viewed, revealed, verified, exported).
A touch is recorded by :class:`CanaryListener` inside the decision's own
transaction, and logged at once as a critical line naming the agent.

Owns the tables ``canaries``, ``canary_exposures`` and ``canary_reports``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    update,
)

from bpoguard.access import Decision, Verb
from bpoguard.audit import DecisionRecord
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard.vault import Vault
from bpoguard.store import models as m
from bpoguard.store._base import Base
from bpoguard.validators import FIELD_COUNTRIES, InvalidValue, validate

log = logging.getLogger("bpoguard.canary")

_ID = BigInteger().with_variant(Integer, "sqlite")
MAX_PLANT = 10_000  # canaries are a pinch of salt, not a second customer base
REPORTABLE = (FieldType.PHONE, FieldType.EMAIL)  # what a victim or a telco can tell us

canaries = Table(
    "canaries",
    Base.metadata,
    Column("customer_id", _ID, ForeignKey("customers.id"), primary_key=True),
    Column("client_id", String(64), ForeignKey("organisations.id"), nullable=False),
    Column("planted_at", DateTime(timezone=True), nullable=False),
    Column("planted_by", String(64), nullable=False),
    Column("shown_to", String(32), nullable=True),  # the agent it was placed with, if any
)

# assigned (placed with an agent), search (shown masked in a search result),
# view / reveal / verify / export / search (touched: a decision on the canary itself)
canary_exposures = Table(
    "canary_exposures",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("customer_id", _ID, ForeignKey("canaries.customer_id"), nullable=False),
    Column("staff_id", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("allowed", Boolean, nullable=True),  # for touches: what the guard decided
    Column("ledger_index", BigInteger, nullable=True),
    Index("ix_canary_exposures_customer", "customer_id", "at"),
)

# Someone called a canary's number or wrote to its address: the proof it left us.
canary_reports = Table(
    "canary_reports",
    Base.metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("customer_id", _ID, ForeignKey("canaries.customer_id"), nullable=False),
    Column("field", String(32), nullable=False),
    Column("reported_on", Date, nullable=False),
    Column("entered_at", DateTime(timezone=True), nullable=False),
    Column("note", String(200), nullable=True),
)

ASSIGNED = "assigned"
SHOWN_IN_SEARCH = "search"
BULK_VERBS = (Verb.SEARCH, Verb.EXPORT)  # decided once over several customers


class CanaryError(InputError):
    """A canary cannot be planted or reported as asked."""


@dataclass(frozen=True)
class Exposure:
    """One time a canary reached a person."""

    staff_id: str
    kind: str
    at: dt.datetime
    allowed: bool | None = None
    ledger_index: int | None = None

    @property
    def touched(self) -> bool:
        """A decision on the canary itself, not only a placement or a search row."""
        return self.kind not in (ASSIGNED, SHOWN_IN_SEARCH)


@dataclass(frozen=True)
class Canary:
    """A canary customer and everyone it reached."""

    customer_id: int
    client_id: str
    ref: str
    planted_at: dt.datetime
    planted_by: str
    shown_to: str | None
    exposures: tuple[Exposure, ...] = field(default_factory=tuple)

    @property
    def touched_by(self) -> tuple[str, ...]:
        """Staff who opened the canary itself, in the order they first did."""
        return tuple(dict.fromkeys(e.staff_id for e in self.exposures if e.touched))

    def as_json(self) -> dict[str, object]:
        """The canary as a JSON document: ids, dates and people, never a field value."""
        return {
            "customer_id": self.customer_id,
            "client_id": self.client_id,
            "ref": self.ref,
            "planted_at": self.planted_at.isoformat(),
            "planted_by": self.planted_by,
            "shown_to": self.shown_to,
            "touched_by": list(self.touched_by),
            "exposures": [
                {
                    "staff_id": e.staff_id,
                    "kind": e.kind,
                    "at": e.at.isoformat(),
                    "allowed": e.allowed,
                    "ledger_index": e.ledger_index,
                }
                for e in self.exposures
            ],
        }


# --- planting ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantOptions:
    """How to plant: how many, with whom, and which contact details to give them."""

    count: int
    planted_by: str = "cli"
    shown_to: tuple[str, ...] = ()  # canaries are dealt to these agents in turn
    phones: tuple[str, ...] = ()  # numbers the client monitors, one per canary
    email_domain: str | None = None  # a domain whose mail the client receives
    seed: int | None = None  # same seed, same canaries (tests, demos)


def plant(
    conn: Connection, vault: Vault, client_id: str, options: PlantOptions, at: dt.datetime
) -> list[Canary]:
    """Add new canary customers to a client, values in the vault; all in conn's transaction."""
    _check_options(options)
    client = conn.execute(
        select(m.Organisation.country, m.Organisation.kind).where(m.Organisation.id == client_id)
    ).first()
    if client is None or client.kind is not m.OrgKind.CLIENT:
        raise CanaryError(f"no client {client_id}: plant canaries for a client organisation")
    country = client.country
    if country not in FIELD_COUNTRIES:
        known = ", ".join(sorted(FIELD_COUNTRIES))
        raise CanaryError(f"client {client_id} is in {country}; canaries can be made for {known}")
    _check_staff(conn, options.shown_to)
    people = _identities(options, country)
    first = (conn.scalar(select(func.max(m.Customer.id))) or 0) + 1
    ids = list(range(first, first + options.count))
    refs = _refs(conn, client_id, ids)
    conn.execute(
        insert(m.Customer),
        [
            {"id": i, "client_id": client_id, "ref": ref, "country": country, "is_canary": True}
            for i, ref in zip(ids, refs, strict=True)
        ],
    )
    vault.put_many(conn, client_id, list(zip(ids, people, strict=True)))
    shown = [options.shown_to[k % len(options.shown_to)] if options.shown_to else None
             for k in range(len(ids))]  # fmt: skip
    _register(conn, client_id, ids, options.planted_by, at, shown)
    return [
        Canary(i, client_id, ref, at, options.planted_by, who)
        for i, ref, who in zip(ids, refs, shown, strict=True)
    ]


def register(
    conn: Connection,
    client_id: str,
    customer_ids: Sequence[int],
    planted_by: str,
    at: dt.datetime,
    shown_to: Sequence[str | None] | None = None,
) -> None:
    """Make existing customers of a client canaries (the simulator plants its own this way)."""
    if not customer_ids:
        return
    conn.execute(
        update(m.Customer)
        .where(m.Customer.client_id == client_id, m.Customer.id.in_(list(customer_ids)))
        .values(is_canary=True)
    )
    _register(conn, client_id, customer_ids, planted_by, at, shown_to or [None] * len(customer_ids))


def _register(
    conn: Connection,
    client_id: str,
    ids: Sequence[int],
    planted_by: str,
    at: dt.datetime,
    shown_to: Sequence[str | None],
) -> None:
    conn.execute(
        insert(canaries),
        [
            {"customer_id": i, "client_id": client_id, "planted_at": at,
             "planted_by": planted_by, "shown_to": who}
            for i, who in zip(ids, shown_to, strict=True)
        ],
    )  # fmt: skip
    placed = [(i, who) for i, who in zip(ids, shown_to, strict=True) if who]
    if placed:
        conn.execute(
            insert(canary_exposures),
            [{"customer_id": i, "staff_id": who, "kind": ASSIGNED, "at": at} for i, who in placed],
        )


def _check_options(options: PlantOptions) -> None:
    if not 1 <= options.count <= MAX_PLANT:
        raise CanaryError(f"--count must be between 1 and {MAX_PLANT}")
    if options.phones and len(options.phones) < options.count:
        raise CanaryError(
            f"{len(options.phones)} phone numbers given for {options.count} canaries: "
            "give one monitored number per canary"
        )
    if options.email_domain is not None and not _DOMAIN.fullmatch(options.email_domain):
        raise CanaryError("--email-domain must be a domain name such as alerts.example.com")


_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.I)


def _check_staff(conn: Connection, staff_ids: Iterable[str]) -> None:
    wanted = set(staff_ids)
    if not wanted:
        return
    found = set(conn.scalars(select(m.Staff.id).where(m.Staff.id.in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise CanaryError(f"no staff member {missing[0]}: canaries can only be shown to staff")


def _identities(options: PlantOptions, country: str) -> list[dict[FieldType, str]]:
    """Realistic people from the identity generator, with the client's monitored contacts."""
    seed = options.seed if options.seed is not None else _fresh_seed()
    # Imported here: Faker (through the simulator's identities) is only for planting.
    from bpoguard.simulate.identities import IdentityFactory

    raw = IdentityFactory(seed).batch(country, options.count)
    people: list[dict[FieldType, str]] = []
    for k, person in enumerate(raw):
        values = {FieldType(name): value for name, value in person.items()}
        if options.phones:
            values[FieldType.PHONE] = options.phones[k]
        if options.email_domain and FieldType.EMAIL in values:
            local = values[FieldType.EMAIL].split("@", 1)[0]
            values[FieldType.EMAIL] = f"{local}@{options.email_domain}"
        people.append(_validated(values, country, k + 1))
    return people


def _validated(values: dict[FieldType, str], country: str, number: int) -> dict[FieldType, str]:
    checked: dict[FieldType, str] = {}
    for field_, value in values.items():
        try:
            checked[field_] = validate(field_, value, country)
        except InvalidValue as err:
            # Only the monitored phone numbers come from the user; name which one.
            raise CanaryError(f"canary {number}: {err}") from None
    return checked


def _fresh_seed() -> int:
    return secrets.randbits(63)


def _refs(conn: Connection, client_id: str, ids: Sequence[int]) -> list[str]:
    """Client references shaped like the client's own (same prefix and width), else digits."""
    sample = conn.scalar(
        select(m.Customer.ref)
        .where(m.Customer.client_id == client_id, m.Customer.is_canary.is_(False))
        .limit(1)
    )
    match = re.fullmatch(r"(.*?)(\d+)", sample or "")
    prefix, width = (match.group(1), len(match.group(2))) if match else ("", 10)
    return [f"{prefix}{i:0{width}d}" for i in ids]


# --- exposures ---------------------------------------------------------------------------


class CanaryListener:
    """Records every decision on a canary as an exposure, and logs it as critical at once."""

    def on_decision(self, conn: Connection, record: DecisionRecord, ledger_index: int) -> None:
        """Write the touch in the decision's transaction; name the agent in the log."""
        if not record.canary or record.verb in BULK_VERBS:
            return  # a search or export names no one customer: the guard records its rows
        conn.execute(
            insert(canary_exposures).values(
                customer_id=record.customer_id,
                staff_id=record.staff_id,
                kind=record.verb.value,
                at=record.at,
                allowed=record.allowed,
                ledger_index=ledger_index,
            )
        )
        log.critical(
            "canary customer %s touched: %s by %s from %s (%s, ledger entry %s)",
            record.customer_id,
            record.verb.value,
            record.staff_id,
            record.source_ip,
            "allowed" if record.allowed else "denied",
            ledger_index,
        )


def planted_among(conn: Connection, customer_ids: Iterable[int]) -> list[int]:
    """The canaries among these customers, in ascending order."""
    ids = sorted({int(i) for i in customer_ids})
    found: list[int] = []
    for start in range(0, len(ids), 500):  # well inside every database's bind limits
        chunk = ids[start : start + 500]
        found += conn.scalars(
            select(canaries.c.customer_id).where(canaries.c.customer_id.in_(chunk))
        )
    return sorted(found)


def expose(
    conn: Connection,
    customer_ids: Iterable[int],
    staff_id: str,
    kind: str,
    at: dt.datetime,
    allowed: bool | None = None,
    ledger_index: int | None = None,
) -> int:
    """Record that canaries among these customers were shown to someone; returns how many.

    ``allowed`` and ``ledger_index`` tie the exposure to the decision (a search) behind it.
    """
    found = planted_among(conn, customer_ids)
    if found:
        conn.execute(
            insert(canary_exposures),
            [{"customer_id": i, "staff_id": staff_id, "kind": kind, "at": at, "allowed": allowed,
              "ledger_index": ledger_index} for i in found],
        )  # fmt: skip
    return len(found)


def alert_shown(
    customer_ids: Sequence[int], staff_id: str, verb: Verb, source_ip: str, decision: Decision
) -> None:
    """Log, as critical, canaries that a search or export reached: their ids, never a value.

    Only someone holding a canary's details can search for them, so a search
    that finds one, allowed or not, is as strong a sign as a touch.
    """
    log.critical(
        "canary customers %s reached by a %s: by %s from %s (%s, ledger entry %s)",
        ", ".join(str(i) for i in customer_ids),
        verb.value,
        staff_id,
        source_ip,
        "allowed" if decision.allowed else "denied",
        decision.ledger_index,
    )


# --- reading -----------------------------------------------------------------------------


def list_canaries(
    conn: Connection, client_id: str | None = None, customer_ids: Collection[int] | None = None
) -> list[Canary]:
    """Every canary (of one client, if given), with its exposures, oldest first.

    With ``customer_ids``, only the canaries among those customers (a trace asks for
    the few in a dump instead of listing every canary with every exposure).
    """
    query = select(canaries, m.Customer.ref).join(
        m.Customer, m.Customer.id == canaries.c.customer_id
    )
    if client_id is not None:
        query = query.where(canaries.c.client_id == client_id)
    if customer_ids is not None:
        query = query.where(canaries.c.customer_id.in_(sorted({int(c) for c in customer_ids})))
    rows = conn.execute(query.order_by(canaries.c.customer_id)).all()
    seen = _exposures(conn, [r.customer_id for r in rows])
    return [
        Canary(r.customer_id, r.client_id, r.ref, _utc(r.planted_at), r.planted_by, r.shown_to,
               tuple(seen.get(r.customer_id, ())))
        for r in rows
    ]  # fmt: skip


def get_canary(conn: Connection, customer_id: int) -> Canary:
    """One canary with its exposures; CanaryError if the customer is not a canary."""
    found = [c for c in list_canaries(conn) if c.customer_id == customer_id]
    if not found:
        raise CanaryError(f"customer {customer_id} is not a canary")
    return found[0]


def _exposures(conn: Connection, ids: Sequence[int]) -> dict[int, list[Exposure]]:
    seen: dict[int, list[Exposure]] = {}
    if not ids:
        return seen
    rows = conn.execute(
        select(canary_exposures)
        .where(canary_exposures.c.customer_id.in_(list(ids)))
        .order_by(canary_exposures.c.at, canary_exposures.c.id)
    )
    for r in rows:
        seen.setdefault(r.customer_id, []).append(
            Exposure(r.staff_id, r.kind, _utc(r.at), r.allowed, r.ledger_index)
        )
    return seen


# --- reports -----------------------------------------------------------------------------


def report(
    conn: Connection,
    vault: Vault,
    field_: FieldType,
    value: str,
    reported_on: dt.date,
    at: dt.datetime,
    note: str | None = None,
) -> list[Canary]:
    """Tie a report ("someone called canary number X") to canaries, through the blind index.

    Returns the canaries whose phone or e-mail it is (usually one, or none), and
    records the report against each.
    """
    if field_ not in REPORTABLE:
        raise CanaryError("a report names a canary's phone number or e-mail address")
    if note is not None and len(note) > 200:
        raise CanaryError("--note must be at most 200 characters")
    clients = conn.scalars(select(canaries.c.client_id).distinct()).all()
    ids = sorted({i for c in clients for i in vault.lookup(conn, c, field_, value)})
    planted = set(
        conn.scalars(select(canaries.c.customer_id).where(canaries.c.customer_id.in_(ids)))
    )
    matched = [i for i in ids if i in planted]
    if matched:
        conn.execute(
            insert(canary_reports),
            [{"customer_id": i, "field": field_.value, "reported_on": reported_on,
              "entered_at": at, "note": note} for i in matched],
        )  # fmt: skip
    return [get_canary(conn, i) for i in matched]


def _utc(at: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


__all__ = [
    "Canary",
    "CanaryError",
    "CanaryListener",
    "Exposure",
    "PlantOptions",
    "alert_shown",
    "expose",
    "get_canary",
    "list_canaries",
    "plant",
    "planted_among",
    "register",
    "report",
]
