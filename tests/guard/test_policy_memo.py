"""Cedar's answers remembered by what they depend on: the same decisions as asking Cedar every time.

A first view of a new customer brings budget counts never seen before; the
memo keys them by the truth values of the comparisons the policies make of
them, so these tests check, for the shipped set and for random generated
sets, that a decision taken from the memo is exactly the one Cedar gives
(allowed or not, the determining policies, every reason word for word).
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_policy import VIEW
from test_policy_reads import _facts

from bpoguard.access import Verb
from bpoguard.guard.facts import LONG_KEYS, REASON_PLACEHOLDERS, Facts, ReasonWords
from bpoguard.guard.policy import (
    PolicySet,
    _fill,
    _pieces,
    _render,
    default_policy_text,
    schema_text,
)

I64 = 2**63
# Long facts: small counts, and values at the edge of Cedar's 64-bit integers.
_LONG_FACTS = {
    "records_used_shift": "records_used_shift",
    "records_limit_shift": "records_limit_shift",
    "records_used_hour": "records_used_hour",
    "records_limit_hour": "records_limit_hour",
    "reveals_used_shift": "reveals_used_shift",
    "reveals_limit_shift": "reveals_limit_shift",
    "records_new": "records_new",
}
_SMALL = st.integers(0, 6)
_EDGE = st.sampled_from([I64 - 1, I64 - 2, -I64, -I64 + 1, 2**62, -(2**62)])
_LONG_VALUES = _SMALL | _EDGE | st.integers(-10, 10)


def _same(policies: PolicySet, facts: Facts) -> None:
    """The memo's decision is Cedar's own, with the same reasons, word for word."""
    assert policies.decide(facts) == policies.without_memo().decide(facts)


def test_the_schema_s_long_attributes_are_the_ones_keyed_by_comparisons() -> None:
    declared = set(re.findall(r"^\s*(\w+): Long,", schema_text(), re.MULTILINE))
    assert declared == LONG_KEYS


def test_the_shipped_set_keys_every_count_by_its_comparisons_and_no_id() -> None:
    plan = PolicySet.load_default().memo_plan
    assert set(plan.longs) == LONG_KEYS
    assert not LONG_KEYS & set(plan.plain)
    assert plan.comparisons == 4  # records_new > 0 (twice, once kept), two sums, the reveals
    assert plan.ids is False


def test_a_first_view_with_new_counts_is_answered_from_memory_with_its_own_numbers() -> None:
    policies = PolicySet.from_text(default_policy_text()).without_memo()
    policies = PolicySet(policies.text, policies._compiled, policies._infos)  # a fresh memo
    first = policies.decide(VIEW)
    assert first.allowed
    for used in range(4, 60):
        # a new customer, a new call, one more place used: the same comparisons' outcomes
        facts = dataclasses.replace(
            VIEW, customer_id=5000 + used, interaction_id=used, records_used_shift=used
        )
        assert policies.decide(facts) == policies.without_memo().decide(facts)
    assert len(policies._memo) == 1  # Cedar asked once for all of them
    full = dataclasses.replace(VIEW, records_used_shift=80, customer_id=99)
    denied = policies.decide(full)
    assert denied == policies.without_memo().decide(full)
    assert denied.reasons == ("denied: shift budget of 80 distinct customers used up",)
    assert len(policies._memo) == 2


def test_reasons_name_the_request_s_own_numbers_when_the_answer_is_remembered() -> None:
    policies = PolicySet.from_text(
        '@id("near-the-limit")\n'
        '@reason("{records_used_shift} of {records_limit_shift} used, {records_new} more")\n'
        "forbid (principal, action, resource)\n"
        "when { context.records_used_shift + context.records_new >= context.records_limit_shift - 5 };\n"
        '@id("all")\npermit (principal, action, resource);'
    )
    one = dataclasses.replace(VIEW, records_used_shift=76, records_limit_shift=80)
    two = dataclasses.replace(VIEW, records_used_shift=77, records_limit_shift=81, records_new=2)
    assert policies.decide(one).reasons == ("denied: 76 of 80 used, 1 more",)
    assert policies.decide(two).reasons == ("denied: 77 of 81 used, 2 more",)
    assert policies.memo_key(one) == policies.memo_key(two)


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_facts(), min_size=1, max_size=6))
def test_the_shipped_set_decides_from_memory_as_cedar_does(many: list[Facts]) -> None:
    policies = PolicySet.load_default()
    for facts in many:
        _same(policies, facts)


# --- random small policy sets -----------------------------------------------------------

_LONGS = sorted(LONG_KEYS)
_BOOLS = ["in_shift", "interaction_open", "device_lost", "reason_given"]


def _literal(value: int) -> str:
    # Cedar's literal is unsigned with a unary minus; -2**63 only as that minus
    return f"({value})" if value >= 0 else f"(-{-value})"


@st.composite
def _term(draw: st.DrawFn, depth: int = 2) -> str:
    leaf = st.sampled_from([f"context.{name}" for name in _LONGS]) | (
        st.integers(-5, 5) | st.sampled_from([I64 - 1, 2**62, -(2**62)])
    ).map(_literal)
    if depth == 0 or draw(st.booleans()):
        return draw(leaf)
    op = draw(st.sampled_from(["+", "-", "+", "-", "*"]))
    if op == "*":  # keep products from overflowing every time: one side a small literal
        return f"({draw(_term(depth - 1))} * {draw(st.integers(-3, 3))})"
    return f"({draw(_term(depth - 1))} {op} {draw(_term(depth - 1))})"


@st.composite
def _condition(draw: st.DrawFn, depth: int = 2) -> str:
    kind = draw(st.sampled_from(["compare", "compare", "bool", "and", "or", "not", "if"]))
    if depth == 0 or kind == "compare":
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"({draw(_term())} {op} {draw(_term())})"
    if kind == "bool":
        return f"context.{draw(st.sampled_from(_BOOLS))}"
    if kind == "not":
        return f"!{draw(_condition(depth - 1))}"
    if kind == "if":
        parts = [draw(_condition(depth - 1)) for _ in range(3)]
        return f"(if {parts[0]} then {parts[1]} else {parts[2]})"
    join = " && " if kind == "and" else " || "
    return f"({draw(_condition(depth - 1))}{join}{draw(_condition(depth - 1))})"


# Uses of a Long the memo cannot key by comparisons: it must key them by value.
_UNSUPPORTED = [
    "[context.records_used_shift, 3].contains(context.records_new)",
    "(if context.in_shift then context.records_used_shift else 5) > 2",
    "context has records_used_shift && context.records_used_shift > 2",
    "{a: context.records_used_shift} == {a: 4}",
]


@st.composite
def _policy_text(draw: st.DrawFn) -> str:
    policies = []
    for n in range(draw(st.integers(1, 4))):
        effect = draw(st.sampled_from(["permit", "forbid"]))
        action = draw(st.sampled_from(["action", 'action == Action::"view"']))
        condition = draw(_condition() | st.sampled_from(_UNSUPPORTED))
        policies.append(
            f'@id("p{n}")\n@reason("rule {n}: {{records_used_shift}}, {{records_new}}")\n'
            f"{effect} (principal, {action}, resource) when {{ {condition} }};"
        )
    return "\n".join(policies)


@st.composite
def _long_facts(draw: st.DrawFn) -> Facts:
    changes: dict[str, object] = {name: draw(_LONG_VALUES) for name in _LONG_FACTS}
    changes.update({name: draw(st.booleans()) for name in _BOOLS})
    changes["action"] = draw(st.sampled_from([Verb.VIEW, Verb.REVEAL]))
    changes["customer_id"] = draw(st.integers(1, 10**6))
    return dataclasses.replace(VIEW, **changes)  # type: ignore[arg-type]


@pytest.mark.slow
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy_text(), st.lists(_long_facts(), min_size=1, max_size=8))
def test_random_sets_decide_from_memory_as_cedar_does(text: str, many: list[Facts]) -> None:
    policies = PolicySet.from_text(text)
    for facts in many:
        _same(policies, facts)


@pytest.mark.parametrize("condition", _UNSUPPORTED)
def test_a_long_used_other_than_in_a_comparison_is_keyed_by_its_value(condition: str) -> None:
    policies = PolicySet.from_text(
        f'@id("odd")\nforbid (principal, action, resource) when {{ {condition} }};\n'
        '@id("all")\npermit (principal, action, resource);'
    )
    assert "records_used_shift" in policies.memo_plan.plain
    assert "records_used_shift" not in policies.memo_plan.longs
    for used in range(8):
        facts = dataclasses.replace(VIEW, records_used_shift=used)
        _same(policies, facts)
        assert policies.memo_key(facts) != policies.memo_key(
            dataclasses.replace(facts, records_used_shift=used + 100)
        )


def test_a_multiplication_of_attributes_is_still_evaluated_exactly() -> None:
    policies = PolicySet.from_text(
        '@id("square")\nforbid (principal, action, resource) when '
        "{ context.records_used_shift * context.records_used_shift > context.records_limit_shift };\n"
        '@id("all")\npermit (principal, action, resource);'
    )
    assert "records_used_shift" in policies.memo_plan.longs
    for used in range(12):
        facts = dataclasses.replace(VIEW, records_used_shift=used)
        _same(policies, facts)
        assert policies.decide(facts).allowed == (used * used <= VIEW.records_limit_shift)


def test_an_overflow_is_never_remembered_and_is_denied_as_cedar_fails() -> None:
    policies = PolicySet.from_text(
        '@id("sum")\npermit (principal, action, resource) when '
        "{ context.records_used_shift + context.records_new > 0 };"
    )
    facts = dataclasses.replace(VIEW, records_used_shift=I64 - 1)
    assert policies.memo_key(facts) is None
    decided = policies.decide(facts)
    assert not decided.allowed
    assert decided.reasons[-1].startswith("denied: the policy could not be evaluated")
    assert decided == policies.without_memo().decide(facts)
    assert policies.memo_key(dataclasses.replace(facts, records_used_shift=I64 - 2)) is not None


def test_a_short_circuited_overflow_decides_as_cedar_does() -> None:
    policies = PolicySet.from_text(
        '@id("guarded")\nforbid (principal, action, resource) when '
        "{ context.in_shift && context.records_used_shift + 1 > 5 };\n"
        '@id("all")\npermit (principal, action, resource);'
    )
    for in_shift in (False, True):
        facts = dataclasses.replace(VIEW, in_shift=in_shift, records_used_shift=I64 - 1)
        _same(policies, facts)


NAMED = [
    'principal == Staff::"MUM1-A0042"',
    'resource == Customer::"4711"',
    'principal in Staff::"MUM1-A0042"',
]


@pytest.mark.parametrize("condition", NAMED)
def test_a_policy_naming_an_entity_keys_the_memo_by_the_ids(condition: str) -> None:
    policies = PolicySet.from_text(
        f'@id("named")\nforbid (principal, action, resource) when {{ {condition} }};\n'
        '@id("all")\npermit (principal, action, resource);'
    )
    assert policies.memo_plan.ids is True
    others = [
        dataclasses.replace(VIEW, staff_id="MUM1-A0043"),
        dataclasses.replace(VIEW, customer_id=4712),
        VIEW,
    ]
    for facts in others:
        _same(policies, facts)
    assert not policies.decide(VIEW).allowed


def test_a_scope_naming_an_entity_keys_the_memo_by_the_ids() -> None:
    policies = PolicySet.from_text(
        '@id("one")\nforbid (principal == Staff::"MUM1-A0042", action, resource);\n'
        '@id("all")\npermit (principal, action, resource);'
    )
    assert policies.memo_plan.ids is True
    assert not policies.decide(VIEW).allowed
    assert policies.decide(dataclasses.replace(VIEW, staff_id="MUM1-A0043")).allowed


def test_the_memo_is_bounded_and_drops_the_least_recently_used() -> None:
    base = PolicySet.load_default()
    policies = PolicySet(base.text, base._compiled, base._infos, memo_size=3)
    # three requests whose comparisons come out differently: within, over the shift, over the hour
    keys = [VIEW, dataclasses.replace(VIEW, records_used_shift=80),
            dataclasses.replace(VIEW, records_used_hour=20)]  # fmt: skip
    assert len({policies.memo_key(facts) for facts in keys}) == 3
    for facts in keys:
        policies.decide(facts)
    # another customer, the same key: Cedar's answer used again, now the most recent
    policies.decide(dataclasses.replace(VIEW, customer_id=1))
    policies.decide(dataclasses.replace(VIEW, records_new=0))
    assert len(policies._memo) == 3
    assert len(policies._decided) == 3
    assert policies.memo_key(keys[0]) in policies._memo
    assert policies.memo_key(keys[1]) not in policies._memo  # the least recently used


def test_an_edited_set_remembers_nothing_of_the_old_one() -> None:
    old = PolicySet.from_text('@id("all")\npermit (principal, action, resource);')
    assert old.decide(VIEW).allowed
    new = PolicySet.from_text(
        '@id("all")\npermit (principal, action, resource);\n'
        '@id("cap")\nforbid (principal, action, resource) when { context.records_used_shift > 2 };'
    )
    assert not new._memo
    assert not new.decide(VIEW).allowed
    assert old.decide(VIEW).allowed
    old.clear_memo()
    assert not old._memo and not old._decided


_WORD = st.sampled_from(sorted(REASON_PLACEHOLDERS))
_TEXT = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=8)


@given(st.lists(st.tuples(_TEXT, _WORD), max_size=4), _TEXT)
def test_a_split_template_fills_in_as_the_whole_one(parts: list[tuple[str, str]], end: str) -> None:
    template = "".join(f"{text}{{{word}}}" for text, word in parts) + end
    words = ReasonWords(VIEW)
    assert _fill(_pieces(template), words) == _render(template, words)
