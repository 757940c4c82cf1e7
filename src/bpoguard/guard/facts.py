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
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import cedarpy

from bpoguard.access import Verb
from bpoguard.fields import FieldType
from bpoguard.store.models import StaffRole

__all__ = [
    "CONTEXT_KEYS",
    "LONG_KEYS",
    "REASON_PLACEHOLDERS",
    "Facts",
    "ReasonWords",
    "StaffStatus",
    "cedar_context",
    "cedar_entities",
    "cedar_reads_address",
    "cedar_request",
    "entity_slice",
    "key_getters",
    "long_getters",
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


@lru_cache(maxsize=1024)
def _name_list(fields: frozenset[FieldType] | tuple[FieldType, ...]) -> tuple[str, ...]:
    # A purpose's fields recur on every request of its calls: sorted once (the JSON
    # encoder writes a tuple as the list Cedar expects).
    return tuple(sorted(f.value for f in fields))


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
def _principal_entities(staff: str) -> cedarpy.Entities:
    # Parsed once per person (and their attributes): a first view of a new customer
    # then parses only that customer, or nothing when the policies read no
    # attribute of the customer.
    return cedarpy.Entities.from_json_str(f"[{staff}]")


@lru_cache(maxsize=4096)
def _entities(staff: str, customer: str) -> cedarpy.Entities:
    # A parsed handle skips Cedar's JSON parse on every repeat of the same pair
    # (an agent views, verifies and reveals the same customer in one call); a new
    # pair clones the person's handle and parses only the customer (about a third).
    return _principal_entities(staff).with_added_json_str(f"[{customer}]")


def cedar_entities(facts: Facts, resource: bool = True) -> cedarpy.Entities:
    """Return the parsed entity slice of one request, cached by its contents.

    ``resource`` False leaves the customer out: for a policy set that reads no
    attribute of the resource, which then decides exactly as with it (the
    customer has no parents, and its id is in the request either way).
    """
    staff, customer = entity_slice(facts)
    return _entities(staff, customer) if resource else _principal_entities(staff)


# The request's context record (``RequestFacts`` in the schema), one attribute a row:
# how each is worked out from the facts, in the schema's order.
_CONTEXT: Final[Mapping[str, Callable[[Facts], Any]]] = MappingProxyType(
    {
        "fields": lambda f: _name_list(f.fields),
        "source_ip": lambda f: {"__extn": {"fn": "ip", "arg": f.source_ip}},
        "on_premises": lambda f: f.on_premises,
        "premises_site": lambda f: f.premises_site_id or "",
        "site_allowed": lambda f: f.site_allowed,
        "off_premises_ban": lambda f: f.off_premises_ban,
        "device_registered": lambda f: f.device_registered,
        "device_issued_to_principal": lambda f: f.device_issued_to_principal,
        "device_lost": lambda f: f.device_lost,
        "in_shift": lambda f: f.in_shift,
        "shift": lambda f: f.shift or "",
        "interaction_open": lambda f: f.interaction_open,
        "interaction_customer_matches": lambda f: f.interaction_customer_matches,
        "purpose": lambda f: f.purpose or "",
        "purpose_fields": lambda f: _name_list(f.purpose_fields),
        "purpose_revealable": lambda f: _name_list(f.purpose_revealable),
        "reason_given": lambda f: f.reason_given,
        "new_customer": lambda f: f.new_customer,
        "records_new": lambda f: f.adds,
        "records_used_shift": lambda f: f.records_used_shift,
        "records_limit_shift": lambda f: f.records_limit_shift,
        "records_used_hour": lambda f: f.records_used_hour,
        "records_limit_hour": lambda f: f.records_limit_hour,
        "reveals_used_shift": lambda f: f.reveals_used_shift,
        "reveals_limit_shift": lambda f: f.reveals_limit_shift,
        "supervisor_approved": lambda f: f.supervisor_approved,
    }
)
CONTEXT_KEYS: Final[frozenset[str]] = frozenset(_CONTEXT)
"""The attributes of a request's context (``RequestFacts`` in the schema)."""


LONG_KEYS: Final[frozenset[str]] = frozenset(
    {"records_new", "records_used_shift", "records_limit_shift", "records_used_hour",
     "records_limit_hour", "reveals_used_shift", "reveals_limit_shift"}
)  # fmt: skip
"""The context attributes of Cedar type ``Long`` (the budget counts and limits)."""


def _address(facts: Facts) -> str:
    return facts.source_ip


@lru_cache(maxsize=64)
def key_getters(keys: tuple[str, ...]) -> tuple[Callable[[Facts], Hashable], ...]:
    """Return, for each context attribute named, how to get a hashable stand-in for its value.

    The stand-in determines the value Cedar is given exactly (the address as its
    text rather than Cedar's extension record), so it can key a memo of Cedar's answers.
    """
    return tuple(_address if key == "source_ip" else _CONTEXT[key] for key in keys)


@lru_cache(maxsize=64)
def long_getters(keys: tuple[str, ...]) -> tuple[Callable[[Facts], int], ...]:
    """Return, for each ``Long`` context attribute named, how to get its value from the facts."""
    if not set(keys) <= LONG_KEYS:
        raise ValueError(f"not Long context attributes: {sorted(set(keys) - LONG_KEYS)}")
    return tuple(_CONTEXT[key] for key in keys)


def cedar_reads_address(address: str) -> bool:
    """Whether Cedar's ``ip()`` takes this address (asked of Cedar once an address, then cached)."""
    return _cedar_reads_address(address)


@lru_cache(maxsize=64)
def _getters(keys: frozenset[str] | None) -> tuple[tuple[str, Callable[[Facts], Any]], ...]:
    return tuple((k, get) for k, get in _CONTEXT.items() if keys is None or k in keys)


def cedar_context(facts: Facts, keys: frozenset[str] | None = None) -> dict[str, Any]:
    """Return the request's context record (``RequestFacts`` in the schema) as JSON data.

    ``keys``: only these attributes (those the policy set reads); None: all of them.
    """
    if keys is not None and "source_ip" not in keys and not _cedar_reads_address(facts.source_ip):
        # An address Cedar cannot read fails the request, and the guard denies it;
        # left out, the same request would be decided. So it is always passed then.
        keys = keys | {"source_ip"}
    return {key: get(facts) for key, get in _getters(keys)}


_TRY_POLICY: Final = "permit (principal, action, resource);"


@lru_cache(maxsize=4096)
def _cedar_reads_address(address: str) -> bool:
    """Whether Cedar's ``ip()`` takes this address, asked of Cedar itself (once an address)."""
    request = {
        "principal": {"type": _STAFF, "id": "-"},
        "action": {"type": "Action", "id": "view"},
        "resource": {"type": _CUSTOMER, "id": "-"},
        "context": json.dumps({"source_ip": {"__extn": {"fn": "ip", "arg": address}}}),
    }
    result = cedarpy.is_authorized(request, _try_policies(), "[]")
    return not result.diagnostics.errors


@lru_cache(maxsize=1)
def _try_policies() -> cedarpy.PolicySet:
    return cedarpy.PolicySet.from_str(_TRY_POLICY)


def cedar_request(facts: Facts, keys: frozenset[str] | None = None) -> dict[str, Any]:
    """Return the Cedar request: principal, action and resource UIDs and the context as JSON text.

    ``keys``: the context attributes to pass (those the policy set reads; Cedar
    reads each one it is given, about 1-12 µs apiece); None: all of them.
    """
    return {
        "principal": {"type": _STAFF, "id": facts.staff_id},
        "action": {"type": "Action", "id": facts.action.value},
        "resource": {"type": _CUSTOMER, "id": str(facts.customer_id)},
        "context": json.dumps(cedar_context(facts, keys)),
    }


# --- what a reason may say -------------------------------------------------


def _listed(fields: Iterable[FieldType]) -> str:
    return ", ".join(_names(fields)) or "no fields"


def _text(value: object, missing: str = "none") -> str:
    return missing if value is None else str(value)


def _not_in(fields: tuple[FieldType, ...], allowed: frozenset[FieldType]) -> str:
    return _listed(set(fields) - allowed)


# Each word a reason may use, worked out from the facts only when a template uses it
# (a decision's reasons use three or four of the twenty-four).
_WORDS: Final[Mapping[str, Callable[[Facts], str]]] = MappingProxyType(
    {
        "action": lambda f: f.action.value,
        "staff_id": lambda f: f.staff_id,
        "role": lambda f: f.role.value,
        "site_id": lambda f: _text(f.site_id),
        "status": lambda f: f.status.value,
        "left_on": lambda f: _text(f.left_on, "an unrecorded date"),
        "customer_id": lambda f: str(f.customer_id),
        "client_id": lambda f: f.client_id,
        "source_ip": lambda f: f.source_ip,
        "premises_site": lambda f: _text(f.premises_site_id),
        "device_id": lambda f: _text(f.device_id, "(none given)"),
        "shift": lambda f: _text(f.shift, "none assigned"),
        "interaction_id": lambda f: _text(f.interaction_id),
        "purpose": lambda f: _text(f.purpose),
        "fields": lambda f: _listed(set(f.fields)),
        "fields_not_needed": lambda f: _not_in(f.fields, f.purpose_fields),
        "fields_not_revealable": lambda f: _not_in(f.fields, f.purpose_revealable),
        "records_new": lambda f: str(f.adds),
        "records_used_shift": lambda f: str(f.records_used_shift),
        "records_limit_shift": lambda f: str(f.records_limit_shift),
        "records_used_hour": lambda f: str(f.records_used_hour),
        "records_limit_hour": lambda f: str(f.records_limit_hour),
        "reveals_used_shift": lambda f: str(f.reveals_used_shift),
        "reveals_limit_shift": lambda f: str(f.reveals_limit_shift),
    }
)


class ReasonWords(Mapping[str, str]):
    """The words a reason template may use, by placeholder name, each made when asked for.

    Never a customer's value: every word comes from the facts.
    """

    __slots__ = ("_facts",)

    def __init__(self, facts: Facts) -> None:
        """The words of one request's facts."""
        self._facts = facts

    def __getitem__(self, name: str) -> str:
        return _WORDS[name](self._facts)

    def __iter__(self) -> Iterator[str]:
        return iter(_WORDS)

    def __len__(self) -> int:
        return len(_WORDS)


def reason_values(facts: Facts) -> dict[str, str]:
    """Return the words a reason template may use, by placeholder name; never a customer's value."""
    return dict(ReasonWords(facts))


REASON_PLACEHOLDERS: Final[frozenset[str]] = frozenset(_WORDS)
"""The ``{names}`` a policy's ``@reason`` template may use."""
