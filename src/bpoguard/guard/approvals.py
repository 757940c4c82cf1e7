"""Export approvals and disclosures: the records behind the guard's bulk verbs.

An export leaves only with a supervisor's approval: one person, named
customers, named fields, once, before the approval expires. The guard checks
an approval when it decides an export and marks it used in the same
transaction, so an approval cannot be spent twice.

Giving and revoking an approval is evidence: :class:`ApprovalBook` writes each
as an entry in the signed ledger, in the same transaction as the row, naming
who approved whom, for which customers (ids) and fields, why and until when;
never a customer's value. A use and a revocation each close the row only while
it is neither used nor revoked (one conditional update), so a revocation and an
export racing for the same approval cannot both win.

A search or an export is one decision, and one ledger entry, over several
customers; :data:`guard_disclosures` says which customers each one showed,
so that "who saw customer Y before the leak" finds searches and exports too.

Owns the tables ``export_approvals`` and ``guard_disclosures``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, and_, insert, select, update

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard._tables import export_approvals, guard_disclosures
from bpoguard.store import models as m

if TYPE_CHECKING:
    from bpoguard.guard.directory import StaffInfo
    from bpoguard.guard.service import Guard
    from bpoguard.ledger import Ledger
    from bpoguard.store import Store

MAX_EXPORT = 10_000  # customers in one approval: a list for a task, not the customer base
MAX_VALID = dt.timedelta(days=7)
REASON_LIMIT = 200
ENTRY_VERSION = 1
ENTRY_KIND = "export_approval"  # the ledger entries of approvals given and revoked


class ApprovalError(InputError):
    """An export approval cannot be given, found or revoked as asked."""


class ApprovalState(enum.StrEnum):
    """Where an approval stands at a moment."""

    PENDING = "pending"  # may still be used
    USED = "used"
    EXPIRED = "expired"  # not used in time
    REVOKED = "revoked"


@dataclass(frozen=True)
class Revocation:
    """Who withdrew an unused approval, when and why, and the ledger entry that says so."""

    at: dt.datetime
    by: str
    reason: str
    ledger_index: int | None

    def as_json(self) -> dict[str, object]:
        """The revocation as a JSON document."""
        return {"at": self.at.isoformat(), "by": self.by, "reason": self.reason,
                "ledger_index": self.ledger_index}  # fmt: skip


@dataclass(frozen=True)
class ExportApproval:
    """A supervisor's permission for one person to export named customers' fields once."""

    id: int
    client_id: str
    staff_id: str  # who may export
    approved_by: str  # the supervisor
    customer_ids: tuple[int, ...]
    fields: tuple[FieldType, ...]
    reason: str
    approved_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None = None
    used_ledger_index: int | None = None
    ledger_index: int | None = None  # the ledger entry that records it given
    revoked: Revocation | None = None

    def problem(self, staff_id: str, at: dt.datetime) -> str | None:
        """Why this approval does not cover an export by staff_id at `at`; None if it does."""
        if self.staff_id != staff_id:
            return f"approval {self.id} is for {self.staff_id}, not {staff_id}"
        if self.revoked is not None:
            return f"approval {self.id} was revoked by {self.revoked.by}"
        if self.used_at is not None:
            return f"approval {self.id} was already used"
        if at < self.approved_at:
            return f"approval {self.id} was given after this request"
        if at >= self.expires_at:
            return f"approval {self.id} expired at {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return None

    def state(self, at: dt.datetime) -> ApprovalState:
        """Pending, used, expired or revoked, as of `at`."""
        if self.revoked is not None:
            return ApprovalState.REVOKED
        if self.used_at is not None:
            return ApprovalState.USED
        if at >= self.expires_at:
            return ApprovalState.EXPIRED
        return ApprovalState.PENDING

    def entry(self) -> dict[str, Any]:
        """The ledger entry of this approval given: people, ids, field names, reason, expiry."""
        return {
            "v": ENTRY_VERSION,
            "kind": ENTRY_KIND,
            "event": "approve",
            "t": _stamp(self.approved_at),
            "approval": self.id,
            "by": self.approved_by,
            "staff": self.staff_id,
            "client": self.client_id,
            "customers": list(self.customer_ids),
            "fields": [f.value for f in self.fields],
            "reason": self.reason,
            "expires": _stamp(self.expires_at),
        }

    def as_json(self, at: dt.datetime | None = None) -> dict[str, object]:
        """The approval as a JSON document (ids, fields and dates; no field values)."""
        document: dict[str, object] = {
            "id": self.id,
            "client_id": self.client_id,
            "staff_id": self.staff_id,
            "approved_by": self.approved_by,
            "customer_ids": list(self.customer_ids),
            "fields": [f.value for f in self.fields],
            "reason": self.reason,
            "approved_at": self.approved_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "used_at": self.used_at.isoformat() if self.used_at else None,
            "used_ledger_index": self.used_ledger_index,
            "ledger_index": self.ledger_index,
            "revoked": self.revoked.as_json() if self.revoked else None,
        }
        if at is not None:
            document["state"] = self.state(at).value
        return document


def check_terms(
    customer_ids: Sequence[int], fields: Sequence[FieldType], reason: str, valid_for: dt.timedelta
) -> None:
    """Raise ApprovalError unless the approval's terms are sound (the guard checks the people)."""
    if not 1 <= len(customer_ids) <= MAX_EXPORT:
        raise ApprovalError(f"an export approval names between 1 and {MAX_EXPORT} customers")
    if len(set(customer_ids)) != len(customer_ids):
        raise ApprovalError("an export approval names each customer once")
    if not fields:
        raise ApprovalError("an export approval names the fields to export")
    _check_reason(reason, "an export approval")
    if not dt.timedelta(0) < valid_for <= MAX_VALID:
        raise ApprovalError("an export approval is valid for more than nothing and at most 7 days")


def record_approval(
    conn: Connection,
    client_id: str,
    staff_id: str,
    approved_by: str,
    customer_ids: Sequence[int],
    fields: Sequence[FieldType],
    reason: str,
    at: dt.datetime,
    valid_for: dt.timedelta,
) -> ExportApproval:
    """Store an approval whose people and terms the guard has checked."""
    row = {
        "client_id": client_id,
        "staff_id": staff_id,
        "approved_by": approved_by,
        "customer_ids": [int(i) for i in customer_ids],
        "fields": [FieldType(f).value for f in fields],
        "reason": reason.strip(),
        "approved_at": at,
        "expires_at": at + valid_for,
    }
    result = conn.execute(insert(export_approvals).values(**row))
    (approval_id,) = result.inserted_primary_key or (None,)
    assert approval_id is not None
    found = get_approval(conn, int(approval_id))
    assert found is not None
    return found


def recorded(conn: Connection, approval: ExportApproval, ledger_index: int) -> ExportApproval:
    """The approval with the index of the ledger entry that records it, kept in its row."""
    approval = dataclasses.replace(approval, ledger_index=ledger_index)
    _store_state(conn, approval)
    return approval


def get_approval(conn: Connection, approval_id: int) -> ExportApproval | None:
    """One approval, or None if there is no such approval."""
    row = conn.execute(select(export_approvals).where(export_approvals.c.id == approval_id)).first()
    return _approval(row) if row is not None else None


def list_approvals(
    conn: Connection,
    at: dt.datetime,
    *,
    state: ApprovalState | None = None,
    client_id: str | None = None,
    staff_id: str | None = None,
    approved_by: str | None = None,
) -> list[ExportApproval]:
    """Approvals, newest first: in one state as of `at`, of one client, for or by one person."""
    query = select(export_approvals)
    if client_id is not None:
        query = query.where(export_approvals.c.client_id == client_id)
    if staff_id is not None:
        query = query.where(export_approvals.c.staff_id == staff_id)
    if approved_by is not None:
        query = query.where(export_approvals.c.approved_by == approved_by)
    if state is ApprovalState.PENDING:  # the common question, answered in SQL
        query = query.where(_open(), export_approvals.c.expires_at > at)
    rows = conn.execute(query.order_by(export_approvals.c.id.desc()))
    found = [_approval(r) for r in rows]
    return [a for a in found if state is None or a.state(at) is state]


def use_approval(
    conn: Connection, approval_id: int, at: dt.datetime, ledger_index: int | None
) -> bool:
    """Mark an approval used by the export decided at `at`; False if it was used meanwhile."""
    result = conn.execute(
        update(export_approvals)
        .where(export_approvals.c.id == approval_id, _open())
        .values(used_at=at, used_ledger_index=ledger_index)
    )
    return bool(result.rowcount)


def _open() -> ColumnElement[bool]:
    """Neither used nor revoked: the condition under which a use or a revocation may close it."""
    return and_(export_approvals.c.used_at.is_(None), export_approvals.c.revoked_at.is_(None))


class ApprovalBook:
    """Approvals given and revoked, each in one transaction with its ledger entry.

    The guard decides who may approve and records the approval with its ledger
    entry (:meth:`Guard.approve_export`); this gives it a transaction of its own
    and revokes, with the revocation's entry.
    """

    def __init__(self, store: Store, guard: Guard, ledger: Ledger) -> None:
        self._store = store
        self._guard = guard
        self._ledger = ledger

    def approve(
        self,
        supervisor_id: str,
        staff_id: str,
        client_id: str,
        customer_ids: Sequence[int],
        fields: Sequence[FieldType],
        reason: str,
        at: dt.datetime,
        valid_for: dt.timedelta,
    ) -> ExportApproval:
        """A supervisor's approval, stored and recorded in the ledger; ApprovalError if refused."""
        with self._store.engine.begin() as conn:
            return self._guard.bound(conn).approve_export(
                supervisor_id, staff_id, client_id, customer_ids, fields, reason, at, valid_for
            )

    def revoke(
        self, approval_id: int, revoked_by: str, reason: str, at: dt.datetime
    ) -> ExportApproval:
        """Withdraw an unused, unexpired approval; recorded in the ledger.

        The approver, or another supervisor still employed at a site the client's
        contract allows, may revoke; ApprovalError otherwise.
        """
        _check_reason(reason, "a revocation")
        with self._store.engine.begin() as conn:
            approval = get_approval(conn, approval_id)
            if approval is None:
                raise ApprovalError(f"no export approval {approval_id}")
            self._check_revoker(approval, revoked_by, at)
            state = approval.state(at)
            if state is not ApprovalState.PENDING:
                raise ApprovalError(
                    f"approval {approval_id} is {state.value}: only a pending one can be revoked"
                )
            revocation = Revocation(at, revoked_by, reason.strip(), None)
            (index,) = self._ledger.append_within(conn, [_revocation_entry(approval, revocation)])
            revocation = dataclasses.replace(revocation, ledger_index=index)
            revoked = dataclasses.replace(approval, revoked=revocation)
            if not _store_state(conn, revoked, closing=True):
                # An export spent it between the read and now: roll back, entry and all.
                raise ApprovalError(f"approval {approval_id} was used just now; not revoked")
        return revoked

    def _check_revoker(self, approval: ExportApproval, revoked_by: str, at: dt.datetime) -> None:
        directory = self._guard.directory
        revoker = directory.staff(revoked_by)
        if revoker.role is not m.StaffRole.SUPERVISOR:
            raise ApprovalError(f"{revoked_by} is not a supervisor: only a supervisor revokes")
        if _has_left(revoker, at):
            raise ApprovalError(f"{revoked_by} has left and revokes nothing")
        if revoker.id == approval.approved_by:
            return
        contract = directory.contract_for_client(approval.client_id)
        if revoker.site_id not in contract.allowed_sites:
            raise ApprovalError(
                f"{revoked_by} works at a site contract {contract.id} does not allow"
            )


def _revocation_entry(approval: ExportApproval, revocation: Revocation) -> dict[str, Any]:
    return {
        "v": ENTRY_VERSION,
        "kind": ENTRY_KIND,
        "event": "revoke",
        "t": _stamp(revocation.at),
        "approval": approval.id,
        "approved_entry": approval.ledger_index,
        "by": revocation.by,
        "staff": approval.staff_id,
        "client": approval.client_id,
        "customers": list(approval.customer_ids),
        "fields": [f.value for f in approval.fields],
        "reason": revocation.reason,
    }


def _store_state(conn: Connection, approval: ExportApproval, closing: bool = False) -> bool:
    """Write the approval's ledger index, or its revocation; False if it was closed meanwhile."""
    query = update(export_approvals).where(export_approvals.c.id == approval.id)
    if not closing:
        result = conn.execute(query.values(ledger_index=approval.ledger_index))
        return bool(result.rowcount)
    revoked = approval.revoked
    assert revoked is not None
    result = conn.execute(
        query.where(_open()).values(
            revoked_at=revoked.at,
            revoked_by=revoked.by,
            revoke_reason=revoked.reason,
            revoked_ledger_index=revoked.ledger_index,
        )
    )
    return bool(result.rowcount)


def _approval(row: Any) -> ExportApproval:
    revocation = None
    if row.revoked_at is not None:
        revocation = Revocation(
            _utc(row.revoked_at), row.revoked_by, row.revoke_reason, row.revoked_ledger_index
        )
    return ExportApproval(
        id=row.id,
        client_id=row.client_id,
        staff_id=row.staff_id,
        approved_by=row.approved_by,
        customer_ids=tuple(int(i) for i in row.customer_ids),
        fields=tuple(FieldType(f) for f in row.fields),
        reason=row.reason,
        approved_at=_utc(row.approved_at),
        expires_at=_utc(row.expires_at),
        used_at=_utc(row.used_at) if row.used_at is not None else None,
        used_ledger_index=row.used_ledger_index,
        ledger_index=row.ledger_index,
        revoked=revocation,
    )


def _check_reason(reason: str, what: str) -> None:
    if not reason.strip() or len(reason) > REASON_LIMIT:
        raise ApprovalError(f"{what} needs a reason of 1 to {REASON_LIMIT} characters")


def _has_left(staff: StaffInfo, at: dt.datetime) -> bool:
    # As the guard counts it: gone from the day after the leaving date.
    return staff.left is not None and at.astimezone(dt.UTC).date() > staff.left


def _stamp(at: dt.datetime) -> str:
    # The audit sink's format, so every entry's time reads alike.
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- disclosures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Disclosure:
    """One customer shown to one person by a search or an export."""

    customer_id: int
    staff_id: str
    verb: str
    at: dt.datetime
    ledger_index: int | None


def disclose(
    conn: Connection,
    ledger_index: int | None,
    staff_id: str,
    verb: str,
    customer_ids: Iterable[int],
    at: dt.datetime,
) -> None:
    """Record the customers a search or export showed, in the decision's transaction."""
    rows = [
        {"ledger_index": ledger_index, "staff_id": staff_id, "verb": verb, "customer_id": int(i),
         "at": at}
        for i in customer_ids
    ]  # fmt: skip
    if rows:
        conn.execute(insert(guard_disclosures), rows)


def disclosures(
    conn: Connection, customer_id: int | None = None, staff_id: str | None = None
) -> list[Disclosure]:
    """Customers shown by searches and exports (to one person, of one customer), oldest first."""
    query = select(guard_disclosures)
    if customer_id is not None:
        query = query.where(guard_disclosures.c.customer_id == customer_id)
    if staff_id is not None:
        query = query.where(guard_disclosures.c.staff_id == staff_id)
    rows = conn.execute(query.order_by(guard_disclosures.c.at, guard_disclosures.c.id))
    return [Disclosure(r.customer_id, r.staff_id, r.verb, _utc(r.at), r.ledger_index) for r in rows]


def _utc(at: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


__all__ = [
    "ENTRY_KIND",
    "MAX_EXPORT",
    "ApprovalBook",
    "ApprovalError",
    "ApprovalState",
    "Disclosure",
    "ExportApproval",
    "Revocation",
    "check_terms",
    "disclose",
    "disclosures",
    "get_approval",
    "list_approvals",
    "record_approval",
    "recorded",
    "use_approval",
]
