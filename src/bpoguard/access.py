"""The one narrow interface through which customer records are read.

"Agent X asks for fields F of customer Y in interaction I from device D at
address A." The simulator, the agent desktop and the CRM all speak through a
:class:`RecordGateway`; the guard is the gateway that decides. Until a guard
is installed, the simulator's ``UnguardedGateway`` records what was asked and
allows it, saying so in every decision.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from bpoguard.events.schema import Action
from bpoguard.fields import FieldType
from bpoguard.store.models import Channel


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
