"""The one narrow interface through which customer records are read.

"Agent X asks for fields F of customer Y in interaction I from device D at
address A." The simulator, the agent desktop and the CRM all speak through a
:class:`RecordGateway`; the guard is the gateway that decides. Until a guard
is installed, :class:`UnguardedGateway` records what was asked and allows it,
saying so in every decision.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, insert, update

from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.fields import FieldType
from bpoguard.store.models import Channel, Interaction


class Verb(enum.StrEnum):
    """What an agent asks to do with a record."""

    VIEW = "view"  # see the masked slice
    REVEAL = "reveal"  # see one field in the clear
    VERIFY = "verify"  # check a caller's answer without seeing the value
    SEARCH = "search"  # find customers by an exact value
    EXPORT = "export"  # take records out in bulk


VERB_ACTIONS = {
    Verb.VIEW: Action.RECORD_VIEW,
    Verb.REVEAL: Action.RECORD_REVEAL,
    Verb.VERIFY: Action.RECORD_VERIFY,
    Verb.SEARCH: Action.RECORD_SEARCH,
    Verb.EXPORT: Action.RECORD_EXPORT,
}


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One request for customer data, with everything a decision needs."""

    staff_id: str
    verb: Verb
    customer_id: int
    fields: tuple[FieldType, ...]
    at: dt.datetime  # UTC
    source_ip: str
    device_id: str | None = None
    interaction_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to a request, with the reasons a person can read."""

    allowed: bool
    reasons: tuple[str, ...]
    ledger_index: int | None = None


@dataclass(frozen=True, slots=True)
class InteractionStart:
    """A call or ticket opened by the telephony or CRM system."""

    id: int
    contract_id: str
    staff_id: str
    customer_id: int
    purpose: str
    channel: Channel
    at: dt.datetime  # UTC
    site_id: str | None = None


class RecordGateway(Protocol):
    """Where interactions are opened and customer records are asked for."""

    def open_interaction(self, start: InteractionStart) -> None: ...

    def close_interaction(self, interaction_id: int, at: dt.datetime) -> None: ...

    def request(self, request: AccessRequest) -> Decision: ...

    def flush(self) -> None: ...


UNGUARDED = ("allowed: no guard installed, request recorded without a policy decision",)


class UnguardedGateway:
    """Records interactions in the store and requests in the event lake; allows all.

    This is what a workspace has before the guard: a faithful record, no
    protection. Interactions are batched on the given connection, whose
    transaction the caller owns; call flush() before reading them back.
    """

    def __init__(self, conn: Connection, lake: LakeWriter, batch: int = 20_000) -> None:
        self._conn = conn
        self._lake = lake
        self._batch = batch
        self._pending: dict[int, dict[str, object]] = {}
        self._events = 0

    def open_interaction(self, start: InteractionStart) -> None:
        self._pending[start.id] = {
            "id": start.id,
            "contract_id": start.contract_id,
            "staff_id": start.staff_id,
            "customer_id": start.customer_id,
            "purpose": start.purpose,
            "channel": start.channel,
            "opened_at": start.at,
            "closed_at": None,
        }
        self._write(
            Event(
                event_id="",
                time=start.at,
                source="crm",
                action=Action.INTERACTION_OPEN,
                outcome=Outcome.SUCCESS,
                actor=start.staff_id,
                target=f"interaction:{start.id}",
                customer_id=start.customer_id,
                site_id=start.site_id,
                interaction_id=start.id,
                purpose=start.purpose,
            )
        )
        if len(self._pending) >= self._batch:
            self.flush()

    def close_interaction(self, interaction_id: int, at: dt.datetime) -> None:
        row = self._pending.get(interaction_id)
        if row is not None:
            row["closed_at"] = at
        else:
            self._conn.execute(
                update(Interaction).where(Interaction.id == interaction_id).values(closed_at=at)
            )
        self._write(
            Event(
                event_id="",
                time=at,
                source="crm",
                action=Action.INTERACTION_CLOSE,
                outcome=Outcome.SUCCESS,
                target=f"interaction:{interaction_id}",
                interaction_id=interaction_id,
            )
        )

    def request(self, request: AccessRequest) -> Decision:
        self._write(
            Event(
                event_id="",
                time=request.at,
                source="gateway",
                action=VERB_ACTIONS[request.verb],
                outcome=Outcome.ALLOWED,
                actor=request.staff_id,
                target=f"customer:{request.customer_id}",
                customer_id=request.customer_id,
                src_ip=request.source_ip,
                device_id=request.device_id,
                reasons=list(UNGUARDED),
                interaction_id=request.interaction_id,
                fields=[f.value for f in request.fields],
            )
        )
        return Decision(allowed=True, reasons=UNGUARDED)

    def flush(self) -> None:
        """Write batched interactions to the store."""
        if self._pending:
            self._conn.execute(insert(Interaction), list(self._pending.values()))
            self._pending.clear()

    def _write(self, event: Event) -> None:
        self._events += 1
        event.event_id = f"gw-{self._lake.run_id}-{self._events}"
        self._lake.write(event)
