"""The audit sink: every access decision goes through one function, to two places.

A decision becomes an entry in the tamper-evident ledger and a row in the
event lake that carries the entry's ledger index, so each can be found from
the other. Ledger entries are written inside the caller's transaction: they
are acknowledged when the caller commits, together with whatever else the
decision changed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from bpoguard.access import VERB_ACTIONS, AccessRequest, Verb
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Event, Outcome
from bpoguard.fields import FieldType
from bpoguard.ledger import Ledger

log = logging.getLogger("bpoguard.audit")

ENTRY_VERSION = 1
_HELD = "bpoguard.audit.held"  # Connection.info key: lake rows waiting for the commit


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision on one request for customer data, as the audit trail keeps it."""

    at: dt.datetime  # UTC
    staff_id: str
    verb: Verb
    customer_id: int
    fields: tuple[FieldType, ...]
    source_ip: str
    device_id: str | None
    interaction_id: int | None
    allowed: bool
    reasons: tuple[str, ...]
    site_id: str | None = None
    canary: bool = False  # the customer is a canary: no real call ever reaches one

    @classmethod
    def of(
        cls,
        request: AccessRequest,
        allowed: bool,
        reasons: tuple[str, ...],
        site_id: str | None = None,
        canary: bool = False,
    ) -> DecisionRecord:
        """The record of a decision on a request."""
        return cls(
            at=request.at,
            staff_id=request.staff_id,
            verb=request.verb,
            customer_id=request.customer_id,
            fields=request.fields,
            source_ip=request.source_ip,
            device_id=request.device_id,
            interaction_id=request.interaction_id,
            allowed=allowed,
            reasons=reasons,
            site_id=site_id,
            canary=canary,
        )

    def entry(self) -> dict[str, Any]:
        """The ledger entry: names, ids, decision and reasons; never a field's value."""
        entry: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "kind": "access",
            "t": _utc(self.at),
            "staff": self.staff_id,
            "verb": self.verb.value,
            "customer": self.customer_id,
            "fields": [f.value for f in self.fields],
            "interaction": self.interaction_id,
            "device": self.device_id,
            "ip": self.source_ip,
            "site": self.site_id,
            "decision": "allow" if self.allowed else "deny",
            "reasons": list(self.reasons),
        }
        if self.canary:
            entry["canary"] = True
        return entry

    def event(self, ledger_index: int) -> Event:
        """The event-lake row of this decision, pointing at its ledger entry."""
        return Event(
            event_id=f"ledger-{ledger_index}",
            time=self.at,
            source="guard",
            action=VERB_ACTIONS[self.verb],
            outcome=Outcome.ALLOWED if self.allowed else Outcome.DENIED,
            actor=self.staff_id,
            target=f"customer:{self.customer_id}",
            customer_id=self.customer_id,
            src_ip=self.source_ip,
            device_id=self.device_id,
            site_id=self.site_id,
            reasons=list(self.reasons),
            interaction_id=self.interaction_id,
            fields=[f.value for f in self.fields],
            ledger_index=ledger_index,
            canary=self.canary,
        )


class DecisionListener(Protocol):
    """Told of every decision once it has its ledger index, inside the same transaction.

    Rules that need no history (a canary touched, access after leaving) listen
    here, so what they write commits or rolls back with the decision itself.
    """

    def on_decision(self, conn: Connection, record: DecisionRecord, ledger_index: int) -> None: ...


class AuditSink:
    """Writes decisions to the ledger and the lake, one at a time or in batches.

    With ``batch=1`` every emit appends at once and returns the ledger index;
    a larger batch (for bulk jobs such as the simulator) buffers decisions
    and appends them together on flush, one ledger write for many entries.
    """

    def __init__(
        self,
        ledger: Ledger,
        lake: LakeWriter,
        batch: int = 1,
        listeners: Sequence[DecisionListener] = (),
    ) -> None:
        self._ledger = ledger
        self._lake = lake
        self._batch = max(1, batch)
        self._pending: list[DecisionRecord] = []
        self._listeners = tuple(listeners)

    def emit(self, conn: Connection, record: DecisionRecord) -> int | None:
        """Record one decision; returns its ledger index unless it is still buffered."""
        self._pending.append(record)
        if len(self._pending) < self._batch:
            return None
        indexes = self.flush(conn)
        return indexes[-1]

    def flush(self, conn: Connection) -> list[int]:
        """Append buffered decisions to the ledger (in conn's transaction) and the lake."""
        if not self._pending:
            return []
        records, self._pending = self._pending, []
        indexes = self._ledger.append_within(conn, [r.entry() for r in records])
        held: list[Event] | None = conn.info.get(_HELD)
        for record, index in zip(records, indexes, strict=True):
            if held is None:
                self._lake.write(record.event(index))
            else:
                held.append(record.event(index))
            for listener in self._listeners:
                listener.on_decision(conn, record, index)
        return indexes

    def append(self, conn: Connection, entry: dict[str, Any]) -> int:
        """Append an entry that is not an access decision (an export approval given, say).

        In conn's transaction, at once (never buffered); returns its ledger index.
        """
        (index,) = self._ledger.append_within(conn, [entry])
        return index

    @contextmanager
    def transaction(self, engine: Engine) -> Iterator[Connection]:
        """``engine.begin()``, whose decisions reach the lake only once it has committed.

        A decision rolled back (a later statement failed, the commit itself failed)
        then leaves no lake row behind, and the ledger index it had, which the next
        entry reuses, is never claimed by two rows.
        """
        held: list[Event] = []
        with engine.begin() as conn:
            conn.info[_HELD] = held
            try:
                yield conn
            finally:
                del conn.info[_HELD]
        try:
            for event in held:
                self._lake.write(event)
        except OSError as err:  # committed decisions stand; a full disk loses lake rows only
            log.error("could not write decisions to the event lake: %s", err.strerror)


def _utc(at: dt.datetime) -> str:
    # isoformat is the C path; the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    # which cost a tenth of building the entry.
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
