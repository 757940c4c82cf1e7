"""The facts a policy decision is made on, and their Cedar encoding.

The guard gathers the facts from the store (who the person is, where the
request comes from, which device, which shift, which open call, how much of
the budget is used) and hands them over as one :class:`Facts`; the policies
only decide. A fact never holds a customer's field value, so neither can a
reason built from it.

Cedar sees the person as a ``Staff`` entity, the record as a ``Customer``
entity, and everything else as the request's context (the record type
``RequestFacts`` in ``policies/schema.cedarschema``).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

import cedarpy

from bpoguard.access import Verb
from bpoguard.fields import FieldType
from bpoguard.store.models import StaffRole

__all__ = [
    "REASON_PLACEHOLDERS",
    "Facts",
    "StaffStatus",
    "cedar_context",
    "cedar_entities",
    "cedar_request",
    "entity_slice",
    "reason_values",
]


class StaffStatus(enum.StrEnum):
    """Where a person stands in their employment."""

    ACTIVE = "active"
    NOTICE = "notice"  # has resigned or been given notice; still works
    LEFT = "left"  # their leaving date has passed


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """Everything the guard checked about one request, as plain data.

    Defaults are the values that allow least: a fact the guard did not
    establish counts against the request.
    """

    # who
    staff_id: str
    role: StaffRole
    site_id: str | None
    status: StaffStatus
    left_on: dt.date | None = None
    # what, on which record
    action: Verb
    fields: tuple[FieldType, ...]
    customer_id: int
    client_id: str
    is_canary: bool = False  # reading one is not forbidden: the guard raises the alert
    # from where
    source_ip: str
    on_premises: bool = False  # source_ip is inside the premises networks of site_id
    premises_site_id: str | None = None  # the site whose premises hold source_ip, if any
    site_allowed: bool = False  # the contract allows the person's site
    off_premises_ban: bool = True  # from the contract
    device_id: str | None = None
    device_registered: bool = False
    device_issued_to_principal: bool = False
    device_lost: bool = False
    # when
    in_shift: bool = False  # in the site's timezone
    shift: str | None = None
    # why
    interaction_id: int | None = None
    interaction_open: bool = False
    interaction_customer_matches: bool = False
    purpose: str | None = None
    purpose_fields: frozenset[FieldType] = field(default_factory=frozenset)
    purpose_revealable: frozenset[FieldType] = field(default_factory=frozenset)
    reason_given: bool = False
    # how much: distinct customers and reveals already used, and the limits
    new_customer: bool = True
    records_new: int | None = None  # customers the request adds; None: 1 if new_customer
    records_used_shift: int = 0
    records_limit_shift: int = 0
    records_used_hour: int = 0
    records_limit_hour: int = 0
    reveals_used_shift: int = 0
    reveals_limit_shift: int = 0
    # approvals
    supervisor_approved: bool = False

    @property
    def is_leaver(self) -> bool:
        """True when the person's leaving date has passed."""
        return self.status is StaffStatus.LEFT

    @property
    def adds(self) -> int:
        """How many distinct customers the request adds to the budgets (a search: several)."""
        if self.records_new is not None:
            return self.records_new
        return 1 if self.new_customer else 0


# --- Cedar encoding --------------------------------------------------------

_STAFF: Final = "Staff"
_CUSTOMER: Final = "Customer"


def _names(fields: Iterable[FieldType]) -> list[str]:
    return sorted(f.value for f in fields)


@lru_cache(maxsize=4096)
def _staff_entity(staff_id: str, role: str, site: str, status: str) -> str:
    attrs = {"role": role, "site": site, "status": status, "is_leaver": status == StaffStatus.LEFT}
    uid = {"type": _STAFF, "id": staff_id}
    return json.dumps({"uid": uid, "attrs": attrs, "parents": []})


@lru_cache(maxsize=4096)
def _customer_entity(customer_id: int, client: str, is_canary: bool) -> str:
    attrs = {"client": client, "is_canary": is_canary}
    uid = {"type": _CUSTOMER, "id": str(customer_id)}
    return json.dumps({"uid": uid, "attrs": attrs, "parents": []})


def entity_slice(facts: Facts) -> tuple[str, str]:
    """Return the JSON of the request's two entities (the person, the record); cached."""
    staff = _staff_entity(facts.staff_id, facts.role.value, facts.site_id or "", facts.status.value)
    customer = _customer_entity(facts.customer_id, facts.client_id, facts.is_canary)
    return staff, customer


@lru_cache(maxsize=4096)
def _entities(staff: str, customer: str) -> cedarpy.Entities:
    # A parsed handle skips Cedar's JSON parse on every repeat of the same pair
    # (an agent views, verifies and reveals the same customer in one call).
    return cedarpy.Entities.from_json_str(f"[{staff},{customer}]")


def cedar_entities(facts: Facts) -> cedarpy.Entities:
    """Return the parsed entity slice of one request, cached by its contents."""
    return _entities(*entity_slice(facts))


def cedar_context(facts: Facts) -> dict[str, Any]:
    """Return the request's context record (``RequestFacts`` in the schema) as JSON data."""
    return {
        "fields": _names(facts.fields),
        "source_ip": {"__extn": {"fn": "ip", "arg": facts.source_ip}},
        "on_premises": facts.on_premises,
        "premises_site": facts.premises_site_id or "",
        "site_allowed": facts.site_allowed,
        "off_premises_ban": facts.off_premises_ban,
        "device_registered": facts.device_registered,
        "device_issued_to_principal": facts.device_issued_to_principal,
        "device_lost": facts.device_lost,
        "in_shift": facts.in_shift,
        "shift": facts.shift or "",
        "interaction_open": facts.interaction_open,
        "interaction_customer_matches": facts.interaction_customer_matches,
        "purpose": facts.purpose or "",
        "purpose_fields": _names(facts.purpose_fields),
        "purpose_revealable": _names(facts.purpose_revealable),
        "reason_given": facts.reason_given,
        "new_customer": facts.new_customer,
        "records_new": facts.adds,
        "records_used_shift": facts.records_used_shift,
        "records_limit_shift": facts.records_limit_shift,
        "records_used_hour": facts.records_used_hour,
        "records_limit_hour": facts.records_limit_hour,
        "reveals_used_shift": facts.reveals_used_shift,
        "reveals_limit_shift": facts.reveals_limit_shift,
        "supervisor_approved": facts.supervisor_approved,
    }


def cedar_request(facts: Facts) -> dict[str, Any]:
    """Return the Cedar request: principal, action and resource UIDs and the context as JSON text."""
    return {
        "principal": {"type": _STAFF, "id": facts.staff_id},
        "action": {"type": "Action", "id": facts.action.value},
        "resource": {"type": _CUSTOMER, "id": str(facts.customer_id)},
        "context": json.dumps(cedar_context(facts)),
    }


# --- what a reason may say -------------------------------------------------


def _listed(fields: Iterable[FieldType]) -> str:
    return ", ".join(_names(fields)) or "no fields"


def _text(value: object, missing: str = "none") -> str:
    return missing if value is None else str(value)


def reason_values(facts: Facts) -> dict[str, str]:
    """Return the words a reason template may use, by placeholder name; never a customer's value."""
    asked = set(facts.fields)
    return {
        "action": facts.action.value,
        "staff_id": facts.staff_id,
        "role": facts.role.value,
        "site_id": _text(facts.site_id),
        "status": facts.status.value,
        "left_on": _text(facts.left_on, "an unrecorded date"),
        "customer_id": str(facts.customer_id),
        "client_id": facts.client_id,
        "source_ip": facts.source_ip,
        "premises_site": _text(facts.premises_site_id),
        "device_id": _text(facts.device_id, "(none given)"),
        "shift": _text(facts.shift, "none assigned"),
        "interaction_id": _text(facts.interaction_id),
        "purpose": _text(facts.purpose),
        "fields": _listed(asked),
        "fields_not_needed": _listed(asked - facts.purpose_fields),
        "fields_not_revealable": _listed(asked - facts.purpose_revealable),
        "records_new": str(facts.adds),
        "records_used_shift": str(facts.records_used_shift),
        "records_limit_shift": str(facts.records_limit_shift),
        "records_used_hour": str(facts.records_used_hour),
        "records_limit_hour": str(facts.records_limit_hour),
        "reveals_used_shift": str(facts.reveals_used_shift),
        "reveals_limit_shift": str(facts.reveals_limit_shift),
    }


REASON_PLACEHOLDERS: Final[frozenset[str]] = frozenset(
    reason_values(
        Facts(
            staff_id="",
            role=StaffRole.AGENT,
            site_id=None,
            status=StaffStatus.ACTIVE,
            action=Verb.VIEW,
            fields=(),
            customer_id=0,
            client_id="",
            source_ip="",
        )
    )
)
"""The ``{names}`` a policy's ``@reason`` template may use."""
