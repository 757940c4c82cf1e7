"""Cedar is given only what a contract's policies read, and decides exactly as with everything."""

from __future__ import annotations

import dataclasses

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_policy import VIEW

from bpoguard.access import Verb
from bpoguard.fields import FieldType
from bpoguard.guard.facts import CONTEXT_KEYS, Facts, cedar_entities, cedar_request
from bpoguard.guard.policy import EVERYTHING, PolicySet, default_policy_text, reads_of
from bpoguard.guard.policy import Reads as PolicyReads

F = FieldType
UNREAD_BY_DEFAULT = {"source_ip", "premises_site", "shift", "purpose", "new_customer"}


def _reads(text: str) -> PolicyReads:
    return reads_of(cedarpy.policies_to_pst(text))


def _with(extra: str) -> PolicySet:
    return PolicySet.from_text(default_policy_text() + "\n" + extra)


def test_default_set_reads_every_context_key_but_five_and_no_customer_attribute() -> None:
    reads = PolicySet.load_default().reads
    assert reads.context == CONTEXT_KEYS - UNREAD_BY_DEFAULT
    assert reads.resource is False


# A forbid on each key the default set does not read, and facts on which it holds.
UNREAD_RULES = [
    ('context.source_ip.isInRange(ip("10.20.0.0/16"))', {"source_ip": "10.20.1.7"}),
    ('context.premises_site == "MUM-1"', {"premises_site_id": "MUM-1"}),
    ('context.shift == "day"', {"shift": "day"}),
    ('context.purpose == "balance_enquiry"', {"purpose": "balance_enquiry"}),
    ("context.new_customer", {"new_customer": True}),
    ('context has shift && context["shift"] == "day"', {"shift": "day"}),
]


@pytest.mark.parametrize(("condition", "holds"), UNREAD_RULES)
def test_a_policy_reading_a_key_the_default_does_not_still_gets_it(
    condition: str, holds: dict[str, object]
) -> None:
    policies = _with(f'@id("extra")\n@reason("extra rule")\n'
                     f"forbid (principal, action, resource) when {{ {condition} }};")  # fmt: skip
    assert policies.reads.context is not None
    assert set(policies.reads.context) & UNREAD_BY_DEFAULT
    denied = policies.decide(dataclasses.replace(VIEW, **holds))  # type: ignore[arg-type]
    assert not denied.allowed
    assert denied.policies == ("extra",)
    assert denied.reasons == ("denied: extra rule",)


def test_the_same_rule_lets_other_facts_through() -> None:
    policies = _with('@id("night-only")\nforbid (principal, action, resource) '
                     'when { context.shift == "night" };')  # fmt: skip
    assert policies.decide(dataclasses.replace(VIEW, shift="day")).allowed
    assert not policies.decide(dataclasses.replace(VIEW, shift="night")).allowed


def test_a_policy_reading_a_customer_attribute_gets_the_customer() -> None:
    policies = _with('@id("no-northbank")\nforbid (principal, action, resource) '
                     'when { resource.client == "northbank" };')  # fmt: skip
    assert policies.reads.resource is True
    assert policies.decide(VIEW).policies == ("no-northbank",)
    assert policies.decide(dataclasses.replace(VIEW, client_id="southbank")).allowed


def test_an_entity_written_as_a_literal_keeps_the_customer() -> None:
    policies = _with('@id("no-4711")\nforbid (principal, action, resource) '
                     'when { resource == Customer::"4711" && Customer::"4711".client == "northbank" };')  # fmt: skip
    assert policies.reads.resource is True
    assert policies.decide(VIEW).policies == ("no-4711",)
    assert policies.decide(dataclasses.replace(VIEW, customer_id=4712)).allowed


@pytest.mark.parametrize(
    "condition",
    [
        '(if context.in_shift then context else context).shift == "night"',
        "context == context",
    ],
)
def test_the_context_used_whole_gives_cedar_every_key(condition: str) -> None:
    reads = _reads(f"permit (principal, action, resource) when {{ {condition} }};")
    assert reads.context is None


def test_the_resource_used_whole_keeps_the_customer() -> None:
    reads = _reads("permit (principal, action, resource) "
                   "when { (if context.in_shift then resource else resource).client == \"x\" };")  # fmt: skip
    assert reads.resource is True
    assert EVERYTHING.context is None and EVERYTHING.resource is True


def test_any_other_use_of_the_resource_keeps_the_customer_to_be_safe() -> None:
    reads = _reads('forbid (principal, action, resource) when { resource == Customer::"2" };')
    assert reads == PolicyReads(frozenset(), True)
    assert _reads('forbid (principal, action, resource in Customer::"1");').resource is False


def test_a_persons_entities_are_parsed_once_for_every_customer() -> None:
    first = cedar_entities(VIEW, resource=False)
    assert cedar_entities(dataclasses.replace(VIEW, customer_id=9999), resource=False) is first
    assert len(first) == 1
    assert len(cedar_entities(VIEW)) == 2


def test_an_address_cedar_cannot_read_is_passed_even_when_no_policy_reads_it() -> None:
    keys = PolicySet.load_default().reads.context
    assert "source_ip" not in cedar_request(VIEW, keys)["context"]
    assert "source_ip" in cedar_request(dataclasses.replace(VIEW, source_ip="bad"), keys)["context"]


# --- the smaller request decides exactly as the whole one ---------------------------------

_DEFAULT = PolicySet.load_default()
_FIELDS = st.lists(st.sampled_from(list(F)), max_size=4, unique=True).map(tuple)
_SETS = st.frozensets(st.sampled_from(list(F)), max_size=6)
_BOOLS = [
    "on_premises",
    "off_premises_ban",
    "site_allowed",
    "device_registered",
    "device_issued_to_principal",
    "device_lost",
    "in_shift",
    "interaction_open",
    "interaction_customer_matches",
    "reason_given",
    "new_customer",
    "supervisor_approved",
]
_COUNTS = ["records_used_shift", "records_limit_shift", "records_used_hour", "records_limit_hour", "reveals_used_shift", "reveals_limit_shift"]  # fmt: skip


@st.composite
def _facts(draw: st.DrawFn) -> Facts:
    changes: dict[str, object] = {name: draw(st.booleans()) for name in _BOOLS}
    changes.update({name: draw(st.integers(0, 12)) for name in _COUNTS})
    changes.update(
        action=draw(st.sampled_from(list(Verb))),
        fields=draw(_FIELDS),
        purpose_fields=draw(_SETS),
        purpose_revealable=draw(_SETS),
        records_new=draw(st.none() | st.integers(0, 3)),
        source_ip=draw(st.sampled_from(["10.20.1.7", "203.0.113.7", "::1", "not-an-address"])),
        role=draw(st.sampled_from(list(type(VIEW.role)))),
        status=draw(st.sampled_from(list(type(VIEW.status)))),
    )
    return dataclasses.replace(VIEW, **changes)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(_facts())
def test_the_reduced_request_decides_as_the_whole_request(facts: Facts) -> None:
    whole = cedarpy.is_authorized(
        cedar_request(facts), default_policy_text(), cedar_entities(facts)
    )
    decided = _DEFAULT.decide(facts)
    if whole.diagnostics.errors:
        assert not decided.allowed
        assert decided.reasons[-1].startswith("denied: the policy could not be evaluated")
        return
    named = whole.diagnostics.id_annotations_by_reason
    assert decided.allowed == whole.allowed
    assert set(decided.policies) == {named[i] for i in whole.diagnostics.reasons}
