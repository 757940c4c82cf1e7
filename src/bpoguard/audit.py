"""The audit sink: every access decision goes through one function, to two places.

A decision becomes an entry in the tamper-evident ledger and a row in the
event lake that carries the entry's ledger index, so each can be found from
the other. Ledger entries are written inside the caller's transaction: they
are acknowledged when the caller commits, together with whatever else the
decision changed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from bpoguard.access import VERB_ACTIONS, AccessRequest, Verb
from bpoguard.events.lake import LakeWriter, Row
from bpoguard.events.schema import Event, Outcome
from bpoguard.fields import FieldType
from bpoguard.ledger import Ledger
from bpoguard.ledger.verifier import MAX_SAFE_INTEGER

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
            # str() of a StrEnum member is its value as an exact str, in C: .value is
            # a Python-level descriptor, which cost a tenth of the simulator's day.
            "verb": str(self.verb),
            "customer": self.customer_id,
            "fields": list(map(str, self.fields)),
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

    def entry_bytes(self) -> bytes | None:
        """``canonical_json(self.entry())``, written straight from the record; None if unusual.

        The entry's shape is fixed, so its canonical text (keys in sorted order,
        no white space, strings escaped by the very function the C encoder
        uses) is filled in directly, a third of the cost of building the dict
        and encoding it. Only for the types the guard and the simulator give
        (exact str and int, ints a double holds, Verb and FieldType members);
        for anything else, or text that is not valid UTF-8, None: the caller
        encodes :meth:`entry`, which refuses it the usual way.
        """
        staff, ip, device, site = self.staff_id, self.source_ip, self.device_id, self.site_id
        customer, interaction = self.customer_id, self.interaction_id
        if not (
            type(staff) is str
            and type(ip) is str
            and (device is None or type(device) is str)
            and (site is None or type(site) is str)
            and type(customer) is int
            and -MAX_SAFE_INTEGER <= customer <= MAX_SAFE_INTEGER
            and (
                interaction is None
                or (
                    type(interaction) is int
                    and -MAX_SAFE_INTEGER <= interaction <= MAX_SAFE_INTEGER
                )
            )
            and type(self.verb) is Verb
            and all(type(f) is FieldType for f in self.fields)
            and all(type(r) is str for r in self.reasons)
        ):
            return None
        text = _ACCESS_ENTRY % (
            '"canary":true,' if self.canary else "",
            customer,
            "allow" if self.allowed else "deny",
            "null" if device is None else _string(device),
            ",".join([_string(str(f)) for f in self.fields]),
            "null" if interaction is None else interaction,
            _string(ip),
            ",".join([_string(r) for r in self.reasons]),
            "null" if site is None else _string(site),
            _string(staff),
            _string(_utc(self.at)),
            _string(str(self.verb)),
        )
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            return None  # a lone surrogate: entry()'s encoding names the problem

    def row(self, ledger_index: int) -> Row:
        """:meth:`event`'s values in the lake's column order (``COLUMNS``), with no Event built."""
        return (
            f"ledger-{ledger_index}",  # event_id
            self.at,  # time
            "guard",  # source
            VERB_ACTIONS[self.verb],  # action
            self.staff_id,  # actor
            None,  # account
            f"customer:{self.customer_id}",  # target
            self.customer_id,  # customer_id
            self.source_ip,  # src_ip
            self.device_id,  # device_id
            self.site_id,  # site_id
            Outcome.ALLOWED if self.allowed else Outcome.DENIED,  # outcome
            list(self.reasons),  # reasons
            self.interaction_id,  # interaction_id
            None,  # purpose
            list(map(str, self.fields)),  # fields
            None,  # bytes
            None,  # dest
            None,  # attachments
            None,  # removable
            self.canary,  # canary
            ledger_index,  # ledger_index
            None,  # raw
        )

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


# entry() in canonical form: its keys in code-point order (canary first when present).
_ACCESS_ENTRY = (
    '{%s"customer":%d,"decision":"%s","device":%s,"fields":[%s],"interaction":%s,"ip":%s,'
    f'"kind":"access","reasons":[%s],"site":%s,"staff":%s,"t":%s,"v":{ENTRY_VERSION},"verb":%s}}'
)
# The string escaper json's C encoder calls with ensure_ascii=False, as the canonical form does.
_string = json.encoder.encode_basestring


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
        blobs = [r.entry_bytes() for r in records]
        if None in blobs:  # an unusual value: the ledger encodes (or refuses) every entry
            indexes = self._ledger.append_within(conn, [r.entry() for r in records])
        else:
            indexes = self._ledger.append_encoded_within(conn, blobs)  # type: ignore[arg-type]
        held: list[Event] | None = conn.info.get(_HELD)
        if held is None and not self._listeners:
            # Bulk jobs (the simulator): the lake's rows as tuples, no Event objects.
            self._lake.write_rows([r.row(i) for r, i in zip(records, indexes, strict=True)])
            return indexes
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


_UTC = dt.UTC


def _utc(at: dt.datetime) -> str:
    # isoformat is the C path; the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    # which cost a tenth of building the entry. A UTC time (nearly all) writes
    # "+00:00" last, swapped for "Z": no astimezone() and replace() copies.
    if at.tzinfo is _UTC:
        return at.isoformat(timespec="microseconds")[:-6] + "Z"
    return at.astimezone(_UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
