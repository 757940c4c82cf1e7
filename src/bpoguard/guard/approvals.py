"""Export approvals and disclosures: the records behind the guard's bulk verbs.

An export leaves only with a supervisor's approval: one person, named
customers, named fields, once, before the approval expires. The guard checks
an approval when it decides an export and marks it used in the same
transaction, so an approval cannot be spent twice.

A search or an export is one decision, and one ledger entry, over several
customers; :data:`guard_disclosures` says which customers each one showed,
so that "who saw customer Y before the leak" finds searches and exports too.

Owns the tables ``export_approvals`` and ``guard_disclosures``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard._tables import export_approvals, guard_disclosures

MAX_EXPORT = 10_000  # customers in one approval: a list for a task, not the customer base
MAX_VALID = dt.timedelta(days=7)
REASON_LIMIT = 200


class ApprovalError(InputError):
    """An export approval cannot be given as asked."""


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

    def problem(self, staff_id: str, at: dt.datetime) -> str | None:
        """Why this approval does not cover an export by staff_id at `at`; None if it does."""
        if self.staff_id != staff_id:
            return f"approval {self.id} is for {self.staff_id}, not {staff_id}"
        if self.used_at is not None:
            return f"approval {self.id} was already used"
        if at < self.approved_at:
            return f"approval {self.id} was given after this request"
        if at >= self.expires_at:
            return f"approval {self.id} expired at {self.expires_at:%Y-%m-%d %H:%M} UTC"
        return None

    def as_json(self) -> dict[str, object]:
        """The approval as a JSON document (ids, fields and dates; no field values)."""
        return {
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
        }


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
    if not reason.strip() or len(reason) > REASON_LIMIT:
        raise ApprovalError(f"an export approval needs a reason of 1 to {REASON_LIMIT} characters")
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


def get_approval(conn: Connection, approval_id: int) -> ExportApproval | None:
    """One approval, or None if there is no such approval."""
    row = conn.execute(select(export_approvals).where(export_approvals.c.id == approval_id)).first()
    if row is None:
        return None
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
        used_at=_utc(row.used_at) if row.used_at else None,
        used_ledger_index=row.used_ledger_index,
    )


def use_approval(
    conn: Connection, approval_id: int, at: dt.datetime, ledger_index: int | None
) -> bool:
    """Mark an approval used by the export decided at `at`; False if it was used meanwhile."""
    result = conn.execute(
        update(export_approvals)
        .where(export_approvals.c.id == approval_id, export_approvals.c.used_at.is_(None))
        .values(used_at=at, used_ledger_index=ledger_index)
    )
    return bool(result.rowcount)


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
    "MAX_EXPORT",
    "ApprovalError",
    "Disclosure",
    "ExportApproval",
    "check_terms",
    "disclose",
    "disclosures",
    "get_approval",
    "record_approval",
    "use_approval",
]
