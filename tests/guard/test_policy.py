"""The shipped policies, each rule both ways, and how a contract's set is loaded and checked."""

from __future__ import annotations

import dataclasses
import datetime as dt

import cedarpy
import pytest

from bpoguard.access import Verb
from bpoguard.errors import BpoguardError
from bpoguard.fields import FieldType
from bpoguard.guard.facts import Facts, StaffStatus, cedar_entities, cedar_request
from bpoguard.guard.policy import (
    PolicyDecision,
    PolicyError,
    PolicySet,
    PolicyStore,
    default_policy_text,
    schema_text,
)
from bpoguard.store.models import StaffRole

F = FieldType

#: An agent at MUM-1, on a balance enquiry call with customer 4711, asking to
#: view the masked name and date of birth: everything in order.
VIEW = Facts(
    staff_id="MUM1-A0042",
    role=StaffRole.AGENT,
    site_id="MUM-1",
    status=StaffStatus.ACTIVE,
    action=Verb.VIEW,
    fields=(F.NAME, F.DATE_OF_BIRTH),
    customer_id=4711,
    client_id="northbank",
    source_ip="10.20.1.7",
    on_premises=True,
    premises_site_id="MUM-1",
    site_allowed=True,
    device_id="MUM1-D0042",
    device_registered=True,
    device_issued_to_principal=True,
    in_shift=True,
    shift="day",
    interaction_id=123,
    interaction_open=True,
    interaction_customer_matches=True,
    purpose="balance_enquiry",
    purpose_fields=frozenset({F.NAME, F.DATE_OF_BIRTH, F.BALANCE, F.CARD_NUMBER}),
    purpose_revealable=frozenset({F.BALANCE}),
    records_used_shift=3,
    records_limit_shift=80,
    records_used_hour=1,
    records_limit_hour=20,
    reveals_used_shift=0,
    reveals_limit_shift=10,
)
REVEAL = dataclasses.replace(VIEW, action=Verb.REVEAL, fields=(F.BALANCE,), reason_given=True)
SEARCH = dataclasses.replace(
    VIEW, action=Verb.SEARCH, customer_id=0, fields=(F.NAME,), records_new=2
)
EXPORT = dataclasses.replace(
    VIEW,
    action=Verb.EXPORT,
    customer_id=0,
    fields=(F.NAME,),
    interaction_id=None,
    interaction_open=False,
    interaction_customer_matches=False,
    purpose=None,
    purpose_fields=frozenset(),
    purpose_revealable=frozenset(),
    records_new=0,
    supervisor_approved=True,
)


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    return PolicySet.load_default()


def decide(policies: PolicySet, facts: Facts, **changes: object) -> PolicyDecision:
    return policies.decide(dataclasses.replace(facts, **changes))  # type: ignore[arg-type]


def assert_denied(decision: PolicyDecision, policy: str, reason: str) -> None:
    assert not decision.allowed
    assert policy in decision.policies
    assert reason in decision.reasons


# --- the allowed paths --------------------------------------------------------


def test_masked_view_within_interaction_is_allowed_with_reason(policies: PolicySet) -> None:
    decision = policies.decide(VIEW)
    assert decision == PolicyDecision(
        True, ("allowed: view within interaction 123 (balance_enquiry)",), ("view-in-interaction",)
    )


def test_verify_within_interaction_is_allowed(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, action=Verb.VERIFY, fields=(F.DATE_OF_BIRTH,))
    assert decision.allowed
    assert decision.reasons == ("allowed: verify within interaction 123 (balance_enquiry)",)


def test_reveal_of_revealable_field_with_reason_is_allowed(policies: PolicySet) -> None:
    decision = policies.decide(REVEAL)
    assert decision.allowed
    assert decision.reasons == (
        "allowed: reveal of balance within interaction 123 (balance_enquiry)",
    )


def test_search_within_an_interaction_is_allowed_masked(policies: PolicySet) -> None:
    decision = policies.decide(SEARCH)
    assert decision.allowed
    assert decision.policies == ("search-masked",)
    assert decision.reasons == (
        "allowed: search within interaction 123 (balance_enquiry); rows are masked and count "
        "against the budget",
    )


def test_search_outside_an_interaction_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, SEARCH, interaction_open=False, interaction_customer_matches=False)
    assert_denied(
        decision,
        "search-outside-interaction",
        "denied: search needs an open interaction with a customer of northbank",
    )


def test_search_from_a_call_of_another_client_is_denied(policies: PolicySet) -> None:
    assert not decide(policies, SEARCH, interaction_customer_matches=False).allowed


def test_search_shows_only_fields_the_purpose_needs(policies: PolicySet) -> None:
    decision = decide(policies, SEARCH, fields=(F.NAME, F.PASSPORT_NUMBER))
    assert_denied(
        decision,
        "field-not-needed",
        "denied: purpose balance_enquiry does not need passport_number",
    )


def test_export_with_supervisor_approval_is_allowed(policies: PolicySet) -> None:
    assert policies.decide(EXPORT).allowed


def test_supervisor_may_view_like_an_agent(policies: PolicySet) -> None:
    assert decide(policies, VIEW, role=StaffRole.SUPERVISOR).allowed


def test_staff_on_notice_still_work(policies: PolicySet) -> None:
    assert decide(policies, VIEW, status=StaffStatus.NOTICE).allowed


def test_canary_customer_is_not_forbidden_by_policy(policies: PolicySet) -> None:
    # The guard raises the alert; refusing would tell the insider which record is planted.
    assert decide(policies, VIEW, is_canary=True).allowed


# --- where from ---------------------------------------------------------------


def test_request_from_outside_premises_is_denied_with_source_and_site(policies: PolicySet) -> None:
    decision = decide(
        policies, VIEW, source_ip="203.0.113.7", on_premises=False, premises_site_id=None
    )
    assert decision.reasons == ("denied: source 203.0.113.7 is outside the premises of site MUM-1",)
    assert decision.policies == ("off-premises",)


def test_outside_premises_is_allowed_when_contract_lifts_the_ban(policies: PolicySet) -> None:
    assert decide(policies, VIEW, on_premises=False, off_premises_ban=False).allowed


def test_site_the_contract_does_not_allow_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, site_allowed=False)
    assert_denied(
        decision, "site-not-in-contract", "denied: site MUM-1 is not a site this contract allows"
    )


def test_unregistered_device_is_denied(policies: PolicySet) -> None:
    decision = decide(
        policies,
        VIEW,
        device_id="HOME-PC",
        device_registered=False,
        device_issued_to_principal=False,
    )
    assert decision.reasons == ("denied: device HOME-PC is not a registered device",)


def test_device_issued_to_someone_else_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, device_issued_to_principal=False)
    assert decision.reasons == ("denied: device MUM1-D0042 is not issued to MUM1-A0042",)


def test_lost_device_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, device_lost=True)
    assert decision.reasons == ("denied: device MUM1-D0042 has been reported lost",)


# --- who and when -------------------------------------------------------------


def test_leaver_is_denied_everything_with_the_date_they_left(policies: PolicySet) -> None:
    for facts in (VIEW, REVEAL, SEARCH, EXPORT):
        decision = decide(
            policies,
            facts,
            staff_id="DEL1-A00016",
            status=StaffStatus.LEFT,
            left_on=dt.date(2026, 3, 13),
        )
        assert_denied(decision, "leaver", "denied: DEL1-A00016 left on 2026-03-13")


def test_reveal_outside_shift_is_denied_with_reason(policies: PolicySet) -> None:
    decision = decide(policies, REVEAL, in_shift=False, shift="night")
    assert decision.reasons == ("denied: MUM1-A0042 is outside their shift (night)",)


def test_roles_that_handle_no_records_fall_to_default_deny(policies: PolicySet) -> None:
    for role in (StaffRole.ANALYST, StaffRole.AUDITOR, StaffRole.INVESTIGATOR, StaffRole.ADMIN):
        decision = decide(policies, VIEW, role=role)
        assert decision == PolicyDecision(False, ("denied: no policy allows view here",), ())


# --- why ----------------------------------------------------------------------


def test_view_without_open_interaction_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, interaction_open=False, interaction_customer_matches=False)
    assert decision.reasons == ("denied: no open interaction with customer 4711",)


def test_view_of_another_customer_than_the_call_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, customer_id=4712, interaction_customer_matches=False)
    assert decision.reasons == ("denied: no open interaction with customer 4712",)


def test_view_of_field_the_purpose_does_not_need_is_denied_naming_it(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, fields=(F.NAME, F.PASSPORT_NUMBER, F.IBAN))
    assert decision.reasons == (
        "denied: purpose balance_enquiry does not need iban, passport_number",
    )


def test_reveal_of_field_the_purpose_does_not_allow_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, REVEAL, fields=(F.CARD_NUMBER,))
    assert decision.reasons == (
        "denied: purpose balance_enquiry does not allow revealing card_number",
    )


def test_reveal_without_a_reason_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, REVEAL, reason_given=False)
    assert decision.reasons == ("denied: revealing balance needs a reason",)


def test_reveal_without_interaction_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, REVEAL, interaction_open=False, interaction_customer_matches=False)
    assert_denied(decision, "no-interaction", "denied: no open interaction with customer 4711")


def test_export_without_supervisor_approval_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, EXPORT, supervisor_approved=False)
    assert decision.reasons == ("denied: export needs a supervisor's approval",)


# --- how much -----------------------------------------------------------------


def test_new_customer_beyond_the_shift_budget_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, records_used_shift=80)
    assert decision.reasons == ("denied: shift budget of 80 distinct customers used up",)


def test_customer_already_counted_is_allowed_when_budget_is_used_up(policies: PolicySet) -> None:
    assert decide(
        policies, VIEW, records_used_shift=80, records_used_hour=20, new_customer=False
    ).allowed


def test_new_customer_beyond_the_hourly_budget_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, records_used_hour=20)
    assert decision.reasons == ("denied: hourly budget of 20 distinct customers used up",)


def test_search_counts_every_new_row_against_the_budget(policies: PolicySet) -> None:
    assert decide(policies, SEARCH, records_used_shift=78).allowed
    assert decide(
        policies, SEARCH, records_used_shift=80, records_used_hour=3, records_new=0
    ).allowed
    decision = decide(policies, SEARCH, records_used_shift=79)
    assert_denied(decision, "shift-budget", "denied: shift budget of 80 distinct customers used up")


def test_reveal_beyond_the_reveal_budget_is_denied(policies: PolicySet) -> None:
    assert decide(policies, REVEAL, reveals_used_shift=9).allowed
    decision = decide(policies, REVEAL, reveals_used_shift=10)
    assert decision.reasons == ("denied: shift budget of 10 reveals used up",)


def test_every_forbid_that_applies_is_a_reason_in_policy_order(policies: PolicySet) -> None:
    decision = decide(
        policies,
        REVEAL,
        on_premises=False,
        source_ip="203.0.113.7",
        device_lost=True,
        reason_given=False,
    )
    assert decision.policies == ("off-premises", "device-lost", "reveal-without-reason")
    assert len(decision.reasons) == 3


# --- the request Cedar sees -----------------------------------------------------


@pytest.mark.parametrize("facts", [VIEW, REVEAL, SEARCH, EXPORT])
def test_encoded_request_fits_the_schema(facts: Facts) -> None:
    schema = cedarpy.Schema.from_str(schema_text())
    result = cedarpy.is_authorized(
        cedar_request(facts), default_policy_text(), cedar_entities(facts), schema=schema
    )
    assert result.diagnostics.errors == []
    assert result.allowed


def test_request_cedar_cannot_build_is_denied(policies: PolicySet) -> None:
    decision = decide(policies, VIEW, source_ip="not-an-address")
    assert not decision.allowed
    assert decision.reasons[0].startswith("denied: the policy could not be evaluated: ")


def test_policy_that_errors_while_evaluating_denies_instead_of_being_skipped() -> None:
    # Cedar skips a policy whose evaluation errors; for a forbid that would mean allowing.
    overflow = """
@id("overflowing-forbid")
forbid (principal, action, resource)
when { context.records_used_shift + 9223372036854775807 > 0 };
"""
    policies = PolicySet.from_text(default_policy_text() + overflow)
    decision = policies.decide(VIEW)
    assert not decision.allowed
    assert decision.policies == ("overflowing-forbid",)
    assert decision.reasons[0].startswith(
        "denied: the policy could not be evaluated: error while evaluating policy `overflowing-forbid`"
    )


# --- batches --------------------------------------------------------------------


def test_decide_many_gives_the_same_answers_as_decide(policies: PolicySet) -> None:
    many = [
        VIEW,
        REVEAL,
        SEARCH,
        EXPORT,
        dataclasses.replace(VIEW, on_premises=False),
        dataclasses.replace(VIEW, customer_id=9, interaction_customer_matches=False),
        # the same person with other attributes: must not share an entity set with VIEW
        dataclasses.replace(VIEW, status=StaffStatus.LEFT),
        dataclasses.replace(VIEW, is_canary=True, role=StaffRole.ANALYST),
        dataclasses.replace(VIEW, source_ip="bad"),
    ]
    assert policies.decide_many(many) == [policies.decide(facts) for facts in many]
    assert policies.decide_many([]) == []


# --- loading and checking a contract's policy set ------------------------------


def test_default_set_has_an_id_and_a_reason_on_every_policy(policies: PolicySet) -> None:
    ids = [p.id for p in policies.policies]
    assert len(ids) == len(set(ids)) == 20
    assert all(p.reason for p in policies.policies)
    assert policies.policies[0].line > 1


def test_policy_that_does_not_fit_the_schema_is_rejected_naming_it_and_its_line() -> None:
    text = (
        default_policy_text()
        + '\n@id("typo")\nforbid (principal, action, resource)\nwhen { principal.rol == "x" };\n'
    )
    line = text.count("\n", 0, text.index('@id("typo")')) + 1
    with pytest.raises(PolicyError) as caught:
        PolicySet.from_text(text)
    message = str(caught.value)
    assert f"policy 'typo' (line {line})" in message
    assert "attribute `rol` on entity type `Staff` not found" in message
    assert isinstance(caught.value, BpoguardError)


def test_policy_text_that_does_not_parse_is_rejected_with_its_line() -> None:
    text = '@id("a")\n@reason("a; b")\npermit (principal, action, resource);\n// c; d\n\n@id("b")\nforbid (principal, action resource);\n'
    with pytest.raises(PolicyError, match=r"policy text line 6: does not parse"):
        PolicySet.from_text(text)


def test_policy_without_an_id_is_rejected() -> None:
    with pytest.raises(PolicyError, match=r"line 1: the policy has no @id"):
        PolicySet.from_text("permit (principal, action, resource);")


def test_two_policies_with_one_id_are_rejected() -> None:
    text = '@id("x")\npermit (principal, action, resource);\n@id("x")\nforbid (principal, action, resource);'
    with pytest.raises(PolicyError, match=r"line 3: @id\('x'\) is already used at line 1"):
        PolicySet.from_text(text)


def test_reason_with_an_unknown_placeholder_is_rejected() -> None:
    text = '@id("x")\n@reason("card {card_number}")\nforbid (principal, action, resource);'
    with pytest.raises(
        PolicyError, match=r"policy 'x' \(line 1\): @reason uses unknown \{card_number\}"
    ):
        PolicySet.from_text(text)


def test_policy_templates_are_rejected() -> None:
    text = '@id("x")\npermit (principal == ?principal, action, resource);'
    with pytest.raises(PolicyError, match="templates"):
        PolicySet.from_text(text)


def test_policy_without_a_reason_falls_back_to_its_id() -> None:
    text = '@id("anyone-may-search")\npermit (principal, action == Action::"search", resource);'
    decision = PolicySet.from_text(text).decide(SEARCH)
    assert decision.reasons == ("allowed: policy anyone-may-search",)


# --- a client edits its contract's policies -------------------------------------


def test_client_added_forbid_stops_card_reveals_even_where_purpose_allows() -> None:
    facts = dataclasses.replace(
        REVEAL, fields=(F.CARD_NUMBER,), purpose_revealable=frozenset({F.CARD_NUMBER})
    )
    assert PolicySet.load_default().decide(facts).allowed
    edited = default_policy_text() + (
        '\n@id("no-card-reveal")\n@reason("{client_id} never reveals card numbers")\n'
        'forbid (principal, action == Action::"reveal", resource)\n'
        'when { context.fields.contains("card_number") };\n'
    )
    decision = PolicySet.from_text(edited).decide(facts)
    assert decision.reasons == ("denied: northbank never reveals card numbers",)


def test_client_edited_exception_allows_revealing_balance_in_collections() -> None:
    facts = dataclasses.replace(REVEAL, purpose="collections", purpose_revealable=frozenset())
    assert not PolicySet.load_default().decide(facts).allowed
    text = default_policy_text()
    text = text.replace(
        "  !context.purpose_revealable.containsAll(context.fields)\n};",
        '  !context.purpose_revealable.containsAll(context.fields) &&\n  !(context.purpose == "collections" && context.fields == ["balance"])\n};',
    ).replace(
        "  context.purpose_revealable.containsAll(context.fields) &&\n  context.reason_given",
        '  (context.purpose_revealable.containsAll(context.fields) ||\n   (context.purpose == "collections" && context.fields == ["balance"])) &&\n  context.reason_given',
    )
    assert text != default_policy_text()
    decision = PolicySet.from_text(text).decide(facts)
    assert decision.allowed
    assert decision.reasons == ("allowed: reveal of balance within interaction 123 (collections)",)


# --- one set per contract -------------------------------------------------------


def test_store_uses_a_contract_s_own_set_and_the_default_for_others() -> None:
    store = PolicyStore()
    lax = default_policy_text().replace(
        "when { context.off_premises_ban && !context.on_premises };",
        "when { false };",
    )
    store.put("northbank-mum", lax)
    off_site = dataclasses.replace(VIEW, on_premises=False)
    assert store.decide("northbank-mum", off_site).allowed
    assert not store.decide("telco-del", off_site).allowed
    store.remove("northbank-mum")
    assert not store.decide("northbank-mum", off_site).allowed


def test_store_keeps_the_old_set_when_new_text_is_rejected() -> None:
    store = PolicyStore()
    with pytest.raises(PolicyError):
        store.put("northbank-mum", "permit (principal, action, resource)")
    assert store.get("northbank-mum") is store.default


def test_the_same_text_is_compiled_once() -> None:
    assert PolicySet.from_text(default_policy_text()) is PolicySet.load_default()


def test_a_remembered_answer_is_explained_with_the_new_requests_facts(policies: PolicySet) -> None:
    # device_id is not in Cedar's input, so the second request reuses the first's answer;
    # its reason must still name its own device.
    first = decide(policies, VIEW, device_id="MUM1-D9001", device_registered=False)
    second = decide(policies, VIEW, device_id="MUM1-D9002", device_registered=False)
    assert "denied: device MUM1-D9001 is not a registered device" in first.reasons
    assert "denied: device MUM1-D9002 is not a registered device" in second.reasons


def test_a_changed_fact_is_decided_afresh(policies: PolicySet) -> None:
    assert decide(policies, VIEW, records_used_hour=3).allowed
    assert not decide(policies, VIEW, records_used_hour=20).allowed
    assert decide(policies, VIEW, records_used_hour=3).allowed
