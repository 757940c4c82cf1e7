"""The guard: decides every request for customer data, serves narrow slices, records all.

Each request runs in one transaction: the facts are gathered, the contract's
Cedar policies decide, the budgets are charged, the decision goes through the
audit sink into the ledger, and only then are values read from the vault,
masked unless revealed. A denial touches no value at all.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hmac
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, bindparam, insert, select, update

from bpoguard.access import AccessRequest, Decision, InteractionStart, Verb
from bpoguard.audit import AuditSink, DecisionRecord
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard import approvals, canary, policy_texts, usage
from bpoguard.guard.approvals import ApprovalError, ExportApproval
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
from bpoguard.guard.vault import Vault
from bpoguard.store import Store
from bpoguard.store import models as m
from bpoguard.store.fast import Prepared
from bpoguard.validators import normalise

log = logging.getLogger("bpoguard.guard")

VERIFY_ATTEMPTS = 3  # per interaction: enough for a caller who mistypes, too few to guess
MAX_SEARCH_ROWS = 10  # an exact-match search finds a caller, not a list
# What an agent may search by: values a caller quotes, high in entropy, blind-indexed.
SEARCHABLE: frozenset[FieldType] = frozenset(
    {FieldType.PHONE, FieldType.ACCOUNT_NUMBER, FieldType.CARD_NUMBER, FieldType.EMAIL}
)
BULK = 0  # the customer id of a decision over several customers (a search, an export)
# Decisions a request may lose to concurrent requests of the same person moving its
# budgets before it is denied as contended; each loss means another request won.
TAKE_TRIES = 5


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


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """ "Find the customer of client C whose phone (or account, card, e-mail) is V."

    ``fields`` are shown, masked, in each row; empty means the fields the open
    interaction's purpose needs. The value is never logged or recorded.
    """

    staff_id: str
    client_id: str
    field: FieldType
    value: str = dataclasses.field(repr=False)
    at: dt.datetime  # UTC
    source_ip: str
    device_id: str | None = None
    interaction_id: int | None = None
    fields: tuple[FieldType, ...] = ()


@dataclass(frozen=True)
class SearchResult:
    """A search's masked rows (none when denied or nothing matched), and its decision."""

    decision: Decision
    rows: tuple[Slice, ...] = ()
    truncated: bool = False  # more customers matched than MAX_SEARCH_ROWS; the rest not shown


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """ "Export what approval N covers", from a desk, at a time."""

    staff_id: str
    approval_id: int
    at: dt.datetime  # UTC
    source_ip: str
    device_id: str | None = None


@dataclass(frozen=True)
class Export:
    """An export's rows (the approved fields of the approved customers, masked), or a denial."""

    decision: Decision
    rows: tuple[Slice, ...] = ()
    approval: ExportApproval | None = None


@dataclass(frozen=True)
class _Call:
    staff_id: str
    customer_id: int
    purpose: str
    closed_at: dt.datetime | None


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
        # Without a store given, each contract's own text comes from the database.
        self._stored_policies = policies is None
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

    def bound(self, conn: Connection, sink: AuditSink | None = None) -> Guard:
        """This guard inside conn's open transaction, optionally through another sink.

        For bulk callers that commit many decisions at once (group commit): with a
        batching sink the ledger entries are appended together on :meth:`flush`,
        and their decisions carry no ledger index until then. Shares the directory
        and policies already loaded.
        """
        other = copy.copy(self)
        other._conn = conn
        if sink is not None:
            other._sink = sink
        return other

    def flush(self) -> None:
        """Write buffered audit entries (a bulk guard's sink batches them)."""
        with self._transaction() as conn:
            self._sink.flush(conn)

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._conn is not None:
            yield self._conn
            return
        with self._sink.transaction(self._store.engine) as conn:
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
        """Reload staff, devices, sites, contracts and policy texts (after any of them changes)."""
        with self._transaction() as conn:
            self._directory = Directory.load(conn)
            if self._stored_policies:
                broken = self._policies.replace_all(policy_texts.stored_texts(conn))
                for contract_id in broken:
                    log.error("contract %s: its policy set does not load; denying", contract_id)

    @property
    def policies(self) -> PolicyStore:
        """The policy sets the guard decides under."""
        self.directory  # noqa: B018 - loading the directory loads the stored texts too
        return self._policies

    # -- search and export -------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResult:
        """Exact-match search through the vault's blind indexes; masked rows, if allowed.

        Decided once by the contract's policies (an open interaction with a customer
        of the client, on premises, in shift, ...), every customer returned counted
        against the budgets, canaries among them recorded, audited once.
        """
        field_ = FieldType(request.field)
        if field_ not in SEARCHABLE:
            known = ", ".join(sorted(f.value for f in SEARCHABLE))
            raise InputError(f"search by {known}; not by {field_.value}")
        with self._transaction() as conn:
            staff = self.directory.staff(request.staff_id)
            contract = self.directory.contract_for_client(request.client_id)
            call = _interaction(conn, request.interaction_id)
            purpose = contract.purposes.get(call.purpose) if call else None
            fields = request.fields or tuple(sorted(purpose.fields if purpose else ()))
            access = AccessRequest(staff.id, Verb.SEARCH, BULK, fields, request.at,
                                   request.source_ip, request.device_id, request.interaction_id)  # fmt: skip
            found = self._vault_lookup(conn, request.client_id, field_, request.value)
            shown = found[:MAX_SEARCH_ROWS]
            owner = _customer(conn, call.customer_id) if call else None
            window = _window(self.directory, staff, request.at)
            whole = _Customer(BULK, request.client_id, "", False)
            matches = owner is not None and owner.client_id == request.client_id
            for _ in range(TAKE_TRIES):
                used, new = usage.read_many(conn, staff.id, shown, window.start, request.at) \
                    if window else (_NO_USAGE, list(shown))  # fmt: skip
                facts = self._facts(access, staff, whole, contract, window, call, used,
                                    matches=matches, records_new=len(new))  # fmt: skip
                outcome = self._policies.decide(contract.id, facts)
                if not outcome.allowed or window is None:
                    break
                if usage.take_many(conn, staff.id, shown, new, window.start, request.at, used):
                    break
            else:
                outcome = _contended()
            planted = canary.planted_among(conn, shown)
            if outcome.allowed:
                listed = ", ".join(str(i) for i in shown) or "none"
                outcome = _noted(outcome, f"search by {field_.value} returned customers {listed}")
            decision = self._audit(conn, access, staff, outcome, bool(planted))
            kept = shown if decision.allowed else []
            _record_shown(conn, access, kept, planted, canary.SHOWN_IN_SEARCH, decision)
            if not decision.allowed:
                return SearchResult(decision)
            rows = [self._masked(conn, customer_id, fields, decision) for customer_id in kept]
        return SearchResult(decision, tuple(rows), truncated=len(found) > len(shown))

    def approve_export(
        self,
        supervisor_id: str,
        staff_id: str,
        client_id: str,
        customer_ids: Sequence[int],
        fields: Sequence[FieldType],
        reason: str,
        at: dt.datetime,
        valid_for: dt.timedelta = dt.timedelta(hours=8),
    ) -> ExportApproval:
        """A supervisor approves one person's export of named customers' fields, once.

        Raises ApprovalError unless the approver is a supervisor still employed, the
        exporter is someone else, and every customer is the client's. The approval is
        an entry in the ledger (through the audit sink), in the row's transaction.
        """
        approvals.check_terms(customer_ids, fields, reason, valid_for)
        supervisor = self.directory.staff(supervisor_id)
        exporter = self.directory.staff(staff_id)
        if supervisor.role is not m.StaffRole.SUPERVISOR:
            raise ApprovalError(
                f"{supervisor_id} is not a supervisor: only a supervisor approves an export"
            )
        if _status(supervisor, at) is StaffStatus.LEFT:
            raise ApprovalError(f"{supervisor_id} has left and approves nothing")
        if supervisor.id == exporter.id:
            raise ApprovalError("a supervisor cannot approve their own export")
        contract = self.directory.contract_for_client(client_id)
        if supervisor.site_id not in contract.allowed_sites:
            raise ApprovalError(
                f"{supervisor_id} works at a site contract {contract.id} does not allow"
            )
        with self._transaction() as conn:
            strays = _not_of_client(conn, client_id, customer_ids)
            if strays:
                raise ApprovalError(f"customer {strays[0]} is not a customer of {client_id}")
            given = approvals.record_approval(conn, client_id, exporter.id, supervisor.id,
                                              customer_ids, fields, reason, at, valid_for)  # fmt: skip
            return approvals.recorded(conn, given, self._sink.append(conn, given.entry()))

    def export(self, request: ExportRequest) -> Export:
        """Export what a supervisor approved (masked rows), once; denied without an approval."""
        with self._transaction() as conn:
            staff = self.directory.staff(request.staff_id)
            approval = approvals.get_approval(conn, request.approval_id)
            if approval is None:
                raise InputError(f"no export approval {request.approval_id}")
            contract = self.directory.contract_for_client(approval.client_id)
            access = AccessRequest(staff.id, Verb.EXPORT, BULK, approval.fields, request.at,
                                   request.source_ip, request.device_id)  # fmt: skip
            problem = approval.problem(staff.id, request.at) or self._approver_problem(
                approval, request.at
            )
            window = _window(self.directory, staff, request.at)
            whole = _Customer(BULK, approval.client_id, "", False)
            # An approved export is bulk by design: it does not eat the per-shift budget.
            facts = self._facts(access, staff, whole, contract, window, None, _NO_USAGE,
                                matches=False, records_new=0, approved=problem is None)  # fmt: skip
            outcome = self._policies.decide(contract.id, facts)
            if problem is not None:
                outcome = _noted(outcome, problem, deny=True)
            elif outcome.allowed:
                outcome = _noted(outcome, f"under approval {approval.id} by {approval.approved_by}"
                                 f" of {len(approval.customer_ids)} customers")  # fmt: skip
            planted = canary.planted_among(conn, approval.customer_ids)
            decision = self._audit(conn, access, staff, outcome, bool(planted))
            if not decision.allowed:
                return Export(decision, approval=approval)
            if not approvals.use_approval(conn, approval.id, request.at, decision.ledger_index):
                raise InputError(f"approval {approval.id} was used by another request just now")
            ids = approval.customer_ids
            _record_shown(conn, access, ids, planted, Verb.EXPORT.value, decision)
            rows = [self._masked(conn, i, approval.fields, decision) for i in ids]
            spent = approvals.get_approval(conn, approval.id)
        return Export(decision, tuple(rows), spent)

    def _approver_problem(self, approval: ExportApproval, at: dt.datetime) -> str | None:
        try:
            approver = self.directory.staff(approval.approved_by)
        except UnknownParty:
            return f"approval {approval.id}: its approver is no longer on record"
        if approver.role is not m.StaffRole.SUPERVISOR or _status(approver, at) is StaffStatus.LEFT:
            return f"approval {approval.id}: {approver.id} is no longer a supervisor"
        return None

    def _vault_lookup(
        self, conn: Connection, client_id: str, field_: FieldType, value: str
    ) -> list[int]:
        vault = self._vault
        if not isinstance(vault, Vault):
            raise InputError("this guard's value source cannot search")
        return vault.lookup(conn, client_id, field_, value)

    def _masked(
        self, conn: Connection, customer_id: int, fields: Sequence[FieldType], decision: Decision
    ) -> Slice:
        values = self._vault.get(conn, customer_id, fields)
        masked = mask_slice(fields, {f.value: v for f, v in values.items()})
        return Slice(customer_id, decision, masked)

    # -- deciding ----------------------------------------------------------------------------

    def _decide(
        self, conn: Connection, request: AccessRequest
    ) -> tuple[Decision, _Customer | None]:
        staff = self.directory.staff(request.staff_id)
        window = _window(self.directory, staff, request.at)
        reveals = len(request.fields) if request.verb is Verb.REVEAL else 0
        for _ in range(TAKE_TRIES):
            found, call, used = _state(conn, request, staff.id, window)
            if found is None:
                outcome = PolicyDecision(
                    False, (f"denied: unknown customer {request.customer_id}",), ()
                )
                return self._audit(conn, request, staff, outcome), None
            customer = found
            contract = self.directory.contract_for_client(customer.client_id)
            matches = call is not None and call.customer_id == customer.id
            facts = self._facts(request, staff, customer, contract, window, call, used, matches)
            outcome = self._policies.decide(contract.id, facts)
            if not outcome.allowed or window is None:
                break
            # Taken from the usage this decision read, or not at all: a request that
            # lost a race for the last place is decided again on the new counts.
            if usage.take(conn, staff.id, customer.id, window.start, request.at, reveals, used):
                break
        else:
            outcome = _contended()
        return self._audit(conn, request, staff, outcome, customer.is_canary), customer

    def _facts(
        self,
        request: AccessRequest,
        staff: StaffInfo,
        customer: _Customer,
        contract: ContractInfo,
        window: ShiftWindow | None,
        call: _Call | None,
        used: usage.Usage,
        matches: bool,
        records_new: int | None = None,
        approved: bool = False,
    ) -> Facts:
        directory = self.directory
        purpose = contract.purposes.get(call.purpose) if call else None
        device = directory.device(request.device_id)
        premises = directory.premises_of(request.source_ip)
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
            interaction_open=call is not None
            and call.closed_at is None
            and call.staff_id == staff.id,
            interaction_customer_matches=matches,
            purpose=call.purpose if call else None,
            purpose_fields=purpose.fields if purpose else frozenset(),
            purpose_revealable=purpose.revealable if purpose else frozenset(),
            reason_given=bool(request.reason and request.reason.strip()),
            new_customer=used.new_customer,
            records_new=records_new,
            records_used_shift=used.records_shift,
            records_limit_shift=contract.records_per_shift,
            records_used_hour=used.records_hour,
            records_limit_hour=contract.records_per_hour,
            reveals_used_shift=used.reveals_shift,
            reveals_limit_shift=contract.reveals_per_shift,
            supervisor_approved=approved,
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


_NO_USAGE = usage.Usage(True, 0, 0, 0)


def _record_shown(
    conn: Connection,
    access: AccessRequest,
    shown: Sequence[int],
    planted: Sequence[int],
    kind: str,
    decision: Decision,
) -> None:
    """What a search or export put in front of someone: disclosures, and canaries reached."""
    verb = access.verb
    approvals.disclose(conn, decision.ledger_index, access.staff_id, verb.value, shown, access.at)
    if planted:
        canary.expose(conn, planted, access.staff_id, kind, access.at,
                      allowed=decision.allowed, ledger_index=decision.ledger_index)  # fmt: skip
        canary.alert_shown(planted, access.staff_id, verb, access.source_ip, decision)


def _contended() -> PolicyDecision:
    reason = (f"denied: the budgets changed under {TAKE_TRIES} concurrent requests in a row; "
              "try again")  # fmt: skip
    return PolicyDecision(False, (reason,), ())


def _noted(outcome: PolicyDecision, note: str, deny: bool = False) -> PolicyDecision:
    """The outcome with one more reason the guard adds itself (what a search returned)."""
    allowed = outcome.allowed and not deny
    reason = f"{'allowed' if allowed else 'denied'}: {note}"
    return PolicyDecision(allowed, (*outcome.reasons, reason), outcome.policies)


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


# Everything a decision reads from the store, in one statement: the customer, the
# interaction and the person's budgets (each a separate statement cost a round trip
# through SQLAlchemy and the driver; together they were a fifth of a view). No row:
# no such customer.
_STATE = (
    select(
        m.Customer.client_id, m.Customer.country, m.Customer.is_canary,
        m.Interaction.staff_id, m.Interaction.customer_id, m.Interaction.purpose,
        m.Interaction.closed_at,
        *usage.COLUMNS,
    )
    .select_from(m.Customer)
    .outerjoin(m.Interaction, m.Interaction.id == bindparam("interaction"))
    .where(m.Customer.id == bindparam("customer"))
)  # fmt: skip
# The one read of every decision, straight to the driver (SQLAlchemy's execution
# layer cost more than the statement; bpoguard.store.fast).
_STATE_RAW = Prepared(_STATE)


def _state(
    conn: Connection, request: AccessRequest, staff_id: str, window: ShiftWindow | None
) -> tuple[_Customer | None, _Call | None, usage.Usage]:
    """The customer, the interaction and the budgets' usage a decision needs."""
    params = usage.params(staff_id, request.customer_id, window.start if window else None,
                          request.at)  # fmt: skip
    params["interaction"] = request.interaction_id
    row = _STATE_RAW.one(conn, params)
    if row is None:
        return None, None, _NO_USAGE
    c_client, c_country, c_canary, i_staff, i_customer, i_purpose, i_closed, *used = row
    customer = _Customer(request.customer_id, c_client, c_country, bool(c_canary))
    call = _Call(i_staff, i_customer, i_purpose, i_closed) if i_staff is not None else None
    return customer, call, usage.from_values(*used) if window is not None else _NO_USAGE


_OWNED = select(m.Customer.id).where(
    m.Customer.client_id == bindparam("client"), m.Customer.id.in_(bindparam("ids", expanding=True))
)
_OPEN = insert(m.Interaction)
_CLOSE = (
    update(m.Interaction)
    .where(m.Interaction.id == bindparam("b_id"))
    .values(closed_at=bindparam("b_at"))
)


def _customer(conn: Connection, customer_id: int) -> _Customer | None:
    row = conn.execute(_CUSTOMER, {"id": customer_id}).first()
    return _Customer(row.id, row.client_id, row.country, row.is_canary) if row else None


def _interaction(conn: Connection, interaction_id: int | None) -> _Call | None:
    if interaction_id is None:
        return None
    row = conn.execute(_INTERACTION, {"id": interaction_id}).first()
    return _Call(row.staff_id, row.customer_id, row.purpose, row.closed_at) if row else None


def _not_of_client(conn: Connection, client_id: str, customer_ids: Sequence[int]) -> list[int]:
    """The ids among customer_ids that are not customers of client_id, in the order given."""
    owned: set[int] = set()
    ids = [int(i) for i in customer_ids]
    for start in range(0, len(ids), 500):  # well inside every database's bind limits
        chunk = ids[start : start + 500]
        owned.update(conn.scalars(_OWNED, {"client": client_id, "ids": chunk}))
    return [i for i in ids if i not in owned]


def _matches(field_: FieldType, stored: str, answer: str, country: str) -> bool:
    """Compare a caller's answer with the stored value, in constant time."""
    given = normalise(field_, answer, country)
    if field_ is FieldType.CARD_NUMBER and len(given) == 4 and given.isdigit():
        stored = stored[-4:]  # "the last four digits of your card"
    elif field_ is FieldType.ADDRESS and "," not in answer:
        stored = normalise(field_, stored.rsplit(",", 1)[-1], country)  # "your postcode"
    return hmac.compare_digest(given.encode(), stored.encode())


__all__ = [
    "BULK",
    "MAX_SEARCH_ROWS",
    "SEARCHABLE",
    "TAKE_TRIES",
    "VERIFY_ATTEMPTS",
    "ApprovalError",
    "Export",
    "ExportApproval",
    "ExportRequest",
    "Guard",
    "Revealed",
    "SearchRequest",
    "SearchResult",
    "Slice",
    "UnknownParty",
    "ValueSource",
    "Verification",
]
