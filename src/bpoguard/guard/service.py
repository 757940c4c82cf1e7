"""The guard: decides every request for customer data, serves narrow slices, records all.

Each request runs in one transaction: the facts are gathered, the contract's
Cedar policies decide, the budgets are charged, the decision goes through the
audit sink into the ledger, and only then are values read from the vault,
masked unless revealed. A denial touches no value at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from bpoguard.access import AccessRequest, Decision, InteractionStart, Verb
from bpoguard.audit import AuditSink, DecisionRecord
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard import usage
from bpoguard.guard.directory import (
    ContractInfo,
    Directory,
    ShiftWindow,
    StaffInfo,
    UnknownParty,
    shift_window,
)
from bpoguard.guard.facts import Facts, StaffStatus
from bpoguard.guard.masking import mask_slice
from bpoguard.guard.policy import PolicyDecision, PolicyStore
from bpoguard.store import Store
from bpoguard.store import models as m
from bpoguard.validators import normalise

VERIFY_ATTEMPTS = 3  # per interaction: enough for a caller who mistypes, too few to guess


class ValueSource(Protocol):
    """Where the guard reads customer values (the vault): decrypts only what is asked."""

    def get(
        self, conn: Connection, customer_id: int, fields: Sequence[FieldType]
    ) -> dict[FieldType, str]: ...


@dataclass(frozen=True)
class Slice:
    """What an agent sees of one customer: masked values, and the decision behind them."""

    customer_id: int
    decision: Decision
    values: dict[FieldType, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Revealed:
    """One field in the clear, for the agent on the call; never logged."""

    customer_id: int
    field: FieldType
    decision: Decision
    value: str | None = dataclasses.field(default=None, repr=False)


@dataclass(frozen=True)
class Verification:
    """Whether the caller's answer matched; the stored value never leaves the guard."""

    decision: Decision
    match: bool | None = None  # None when the check was not allowed
    attempts_left: int = 0


@dataclass(frozen=True)
class _Customer:
    id: int
    client_id: str
    country: str
    is_canary: bool


class Guard:
    """The record gateway that decides: view, reveal, verify, with reasons and a ledger entry."""

    def __init__(
        self,
        store: Store,
        values: ValueSource | None,
        sink: AuditSink,
        policies: PolicyStore | None = None,
        conn: Connection | None = None,
    ) -> None:
        """`values` None: a guard that decides and records but serves no values.

        `conn`: work inside this connection's open transaction (bulk callers such
        as the simulator) instead of one transaction a request.
        """
        self._store = store
        self._values = values
        self._sink = sink
        self._policies = policies or PolicyStore()
        self._directory: Directory | None = None
        self._conn = conn

    # -- the CRM's side --------------------------------------------------------------------

    def open_interaction(self, start: InteractionStart) -> None:
        """Record that a call or ticket began (the telephony or CRM system calls this)."""
        with self._transaction() as conn:
            contract = self.directory.contract(start.contract_id)
            self.directory.staff(start.staff_id)
            if start.purpose not in contract.purposes:
                raise InputError(f"contract {contract.id} has no purpose {start.purpose!r}")
            row = {"id": start.id, "contract_id": start.contract_id, "staff_id": start.staff_id,
                   "customer_id": start.customer_id, "purpose": start.purpose,
                   "channel": start.channel, "opened_at": start.at, "closed_at": None}  # fmt: skip
            conn.execute(_OPEN, row)

    def close_interaction(self, interaction_id: int, at: dt.datetime) -> None:
        """Record that a call or ticket ended; reads in it are refused from then on."""
        with self._transaction() as conn:
            conn.execute(_CLOSE, {"b_id": interaction_id, "b_at": at})

    # -- the agent's side ------------------------------------------------------------------

    def request(self, request: AccessRequest) -> Decision:
        """Decide and record a request without serving values (bulk and simulated callers)."""
        with self._transaction() as conn:
            return self._decide(conn, request)[0]

    def view(self, request: AccessRequest) -> Slice:
        """The masked slice of the fields asked for, if the policies allow it."""
        with self._transaction() as conn:
            decision, _ = self._decide(conn, request)
            if not decision.allowed:
                return Slice(request.customer_id, decision)
            values = self._vault.get(conn, request.customer_id, request.fields)
        masked = mask_slice(request.fields, {f.value: v for f, v in values.items()})
        return Slice(request.customer_id, decision, masked)

    def reveal(self, request: AccessRequest) -> Revealed:
        """One field in the clear, if the purpose allows revealing it and a reason is given."""
        if len(request.fields) != 1:
            raise InputError("reveal one field at a time")
        with self._transaction() as conn:
            decision, _ = self._decide(conn, request)
            if not decision.allowed:
                return Revealed(request.customer_id, request.fields[0], decision)
            value = self._vault.get(conn, request.customer_id, request.fields)
        field_ = request.fields[0]
        return Revealed(request.customer_id, field_, decision, value.get(field_))

    def verify(self, request: AccessRequest, answer: str) -> Verification:
        """Check what the caller says against the record; the agent learns only match or not."""
        if len(request.fields) != 1:
            raise InputError("verify one field at a time")
        with self._transaction() as conn:
            decision, customer = self._decide(conn, request)
            if not decision.allowed or customer is None or request.interaction_id is None:
                return Verification(decision)
            left = usage.take_verify_attempt(conn, request.interaction_id, VERIFY_ATTEMPTS)
            if left < 0:
                return Verification(_deny(decision, "denied: no verification attempts left "
                                          f"in interaction {request.interaction_id}"))  # fmt: skip
            field_ = request.fields[0]
            stored = self._vault.get(conn, request.customer_id, request.fields).get(field_)
        match = stored is not None and _matches(field_, stored, answer, customer.country)
        return Verification(decision, match, left)

    # -- housekeeping ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered audit entries (a bulk guard's sink batches them)."""
        with self._transaction() as conn:
            self._sink.flush(conn)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        with self._store.engine.begin() as conn:
            yield conn

    @property
    def _vault(self) -> ValueSource:
        if self._values is None:
            raise InputError("this guard has no vault: it decides and records, serves no values")
        return self._values

    @property
    def directory(self) -> Directory:
        if self._directory is None:
            self.refresh()
        assert self._directory is not None
        return self._directory

    def refresh(self) -> None:
        """Reload staff, devices, sites and contracts (after HR or asset changes)."""
        with self._transaction() as conn:
            self._directory = Directory.load(conn)

    # -- deciding ----------------------------------------------------------------------------

    def _decide(
        self, conn: Connection, request: AccessRequest
    ) -> tuple[Decision, _Customer | None]:
        staff = self.directory.staff(request.staff_id)
        customer = _customer(conn, request.customer_id)
        if customer is None:
            outcome = PolicyDecision(
                False, (f"denied: unknown customer {request.customer_id}",), ()
            )
            return self._audit(conn, request, staff, outcome), None
        contract = self.directory.contract_for_client(customer.client_id)
        window = _window(self.directory, staff, request.at)
        facts = self._facts(conn, request, staff, customer, contract, window)
        outcome = self._policies.decide(contract.id, facts)
        if outcome.allowed and window is not None:
            reveals = len(request.fields) if request.verb is Verb.REVEAL else 0
            usage.record(conn, staff.id, customer.id, window.start, request.at, reveals)
        return self._audit(conn, request, staff, outcome, customer.is_canary), customer

    def _facts(
        self,
        conn: Connection,
        request: AccessRequest,
        staff: StaffInfo,
        customer: _Customer,
        contract: ContractInfo,
        window: ShiftWindow | None,
    ) -> Facts:
        directory = self.directory
        interaction = _interaction(conn, request.interaction_id)
        purpose = contract.purposes.get(interaction.purpose) if interaction else None
        device = directory.device(request.device_id)
        premises = directory.premises_of(request.source_ip)
        used = (
            usage.read(conn, staff.id, customer.id, window.start, request.at)
            if window
            else usage.Usage(True, 0, 0, 0)
        )
        return Facts(
            staff_id=staff.id,
            role=staff.role,
            site_id=staff.site_id,
            status=_status(staff, request.at),
            left_on=staff.left,
            action=request.verb,
            fields=request.fields,
            customer_id=customer.id,
            client_id=customer.client_id,
            is_canary=customer.is_canary,
            source_ip=request.source_ip,
            on_premises=premises is not None and premises == staff.site_id,
            premises_site_id=premises,
            site_allowed=staff.site_id in contract.allowed_sites,
            off_premises_ban=contract.off_premises_ban,
            device_id=request.device_id,
            device_registered=device is not None,
            device_issued_to_principal=device is not None and device.holder_id == staff.id,
            device_lost=device is not None and device.status is m.DeviceStatus.LOST,
            in_shift=window is not None,
            shift=staff.shift,
            interaction_id=request.interaction_id,
            interaction_open=interaction is not None
            and interaction.closed_at is None
            and interaction.staff_id == staff.id,
            interaction_customer_matches=interaction is not None
            and interaction.customer_id == customer.id,
            purpose=interaction.purpose if interaction else None,
            purpose_fields=purpose.fields if purpose else frozenset(),
            purpose_revealable=purpose.revealable if purpose else frozenset(),
            reason_given=bool(request.reason and request.reason.strip()),
            new_customer=used.new_customer,
            records_used_shift=used.records_shift,
            records_limit_shift=contract.records_per_shift,
            records_used_hour=used.records_hour,
            records_limit_hour=contract.records_per_hour,
            reveals_used_shift=used.reveals_shift,
            reveals_limit_shift=contract.reveals_per_shift,
        )

    def _audit(
        self,
        conn: Connection,
        request: AccessRequest,
        staff: StaffInfo,
        outcome: PolicyDecision,
        canary: bool = False,
    ) -> Decision:
        record = DecisionRecord.of(
            request, outcome.allowed, outcome.reasons, staff.site_id, canary=canary
        )
        index = self._sink.emit(conn, record)
        return Decision(outcome.allowed, outcome.reasons, index)


def _deny(decision: Decision, reason: str) -> Decision:
    return Decision(False, (reason,), decision.ledger_index)


def _status(staff: StaffInfo, at: dt.datetime) -> StaffStatus:
    today = at.astimezone(dt.UTC).date()
    if staff.left is not None and today > staff.left:
        return StaffStatus.LEFT
    if staff.notice_given is not None:
        return StaffStatus.NOTICE
    return StaffStatus.ACTIVE


def _window(directory: Directory, staff: StaffInfo, at: dt.datetime) -> ShiftWindow | None:
    site = directory.site(staff.site_id)
    return shift_window(site, staff.shift, at) if site else None


# Built once; SQLAlchemy caches their compiled form (building them per request was
# a measurable share of a decision).
_CUSTOMER = select(
    m.Customer.id, m.Customer.client_id, m.Customer.country, m.Customer.is_canary
).where(m.Customer.id == bindparam("id"))
_INTERACTION = select(
    m.Interaction.staff_id, m.Interaction.customer_id, m.Interaction.purpose,
    m.Interaction.closed_at,
).where(m.Interaction.id == bindparam("id"))  # fmt: skip
_OPEN = insert(m.Interaction)
_CLOSE = (
    update(m.Interaction)
    .where(m.Interaction.id == bindparam("b_id"))
    .values(closed_at=bindparam("b_at"))
)


def _customer(conn: Connection, customer_id: int) -> _Customer | None:
    row = conn.execute(_CUSTOMER, {"id": customer_id}).first()
    return _Customer(row.id, row.client_id, row.country, row.is_canary) if row else None


def _interaction(
    conn: Connection, interaction_id: int | None
) -> Row[str, int, str, dt.datetime | None] | None:
    if interaction_id is None:
        return None
    return conn.execute(_INTERACTION, {"id": interaction_id}).first()


def _matches(field_: FieldType, stored: str, answer: str, country: str) -> bool:
    """Compare a caller's answer with the stored value, in constant time."""
    given = normalise(field_, answer, country)
    if field_ is FieldType.CARD_NUMBER and len(given) == 4 and given.isdigit():
        stored = stored[-4:]  # "the last four digits of your card"
    elif field_ is FieldType.ADDRESS and "," not in answer:
        stored = normalise(field_, stored.rsplit(",", 1)[-1], country)  # "your postcode"
    return hmac.compare_digest(given.encode(), stored.encode())


__all__ = [
    "VERIFY_ATTEMPTS",
    "Guard",
    "Revealed",
    "Slice",
    "UnknownParty",
    "ValueSource",
    "Verification",
]
