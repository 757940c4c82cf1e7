"""Guard.search: exact match through blind indexes, masked rows, decided, counted, audited once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection

from bpoguard.fields import FieldType
from bpoguard.guard import approvals, canary
from bpoguard.guard.canary import PlantOptions
from bpoguard.guard.masking import mask
from bpoguard.guard.service import SearchRequest
from bpoguard.guard.vault import Vault

if TYPE_CHECKING:
    from conftest import Desk, Office

F = FieldType


def _value(office: Office, customer: int, field_: FieldType) -> str:
    with office.store.engine.connect() as conn:
        return office.vault.get(conn, customer, [field_])[field_]


def _search(desk: Desk, field_: FieldType, value: str, **changes: object) -> SearchRequest:
    request = SearchRequest(
        staff_id=desk.staff,
        client_id=desk.client,
        field=field_,
        value=value,
        at=desk.at + dt.timedelta(minutes=2),
        source_ip=desk.ip,
        device_id=desk.device,
    )
    return dataclasses.replace(request, **changes)  # type: ignore[arg-type]


def _in_call(office: Office) -> tuple[Desk, int]:
    desk = office.desk()
    return desk, office.call(desk, desk.customers[0])


def test_search_by_phone_in_a_call_returns_the_customer_masked(office: Office) -> None:
    desk, call = _in_call(office)
    wanted = desk.customers[5]
    phone = _value(office, wanted, F.PHONE)
    result = office.guard.search(_search(desk, F.PHONE, phone, interaction_id=call))
    assert result.decision.allowed, result.decision.reasons
    assert [row.customer_id for row in result.rows] == [wanted]
    (row,) = result.rows
    assert set(row.values) == set(desk.fields)
    with office.store.engine.connect() as conn:
        clear = office.vault.get(conn, wanted, desk.fields)
    for field_, shown in row.values.items():
        assert shown == mask(field_, clear[field_])
    assert result.decision.reasons[-1] == f"allowed: search by phone returned customers {wanted}"
    assert not result.truncated


def test_a_search_is_one_ledger_entry_naming_no_value_and_its_rows_are_disclosed(
    office: Office,
) -> None:
    desk, call = _in_call(office)
    wanted = desk.customers[6]
    phone = _value(office, wanted, F.PHONE)
    before = office.ledger.size()
    result = office.guard.search(_search(desk, F.PHONE, phone, interaction_id=call))
    assert office.ledger.size() == before + 1
    entry = office.ledger.entry(before)
    assert (entry["verb"], entry["customer"], entry["decision"]) == ("search", 0, "allow")
    assert phone not in json.dumps(entry) and phone[-6:] not in json.dumps(entry)
    with office.store.engine.connect() as conn:
        shown = approvals.disclosures(conn, customer_id=wanted)
    assert [(d.staff_id, d.verb, d.ledger_index) for d in shown] == [
        (desk.staff, "search", result.decision.ledger_index)
    ]


@pytest.mark.parametrize(
    ("field_", "variant"),
    [
        (F.ACCOUNT_NUMBER, lambda v: f" {v[:4]} {v[4:]} "),
        (F.CARD_NUMBER, lambda v: " ".join(v[i : i + 4] for i in range(0, len(v), 4))),
        (F.EMAIL, str.upper),
    ],
)
def test_search_by_account_card_or_email_matches_the_value_however_it_is_typed(
    office: Office, field_: FieldType, variant: object
) -> None:
    desk, call = _in_call(office)
    wanted = desk.customers[7]
    typed = variant(_value(office, wanted, field_))  # type: ignore[operator]
    result = office.guard.search(_search(desk, field_, typed, interaction_id=call))
    assert [row.customer_id for row in result.rows] == [wanted], result.decision.reasons


def test_a_search_outside_an_interaction_is_denied_recorded_and_shows_nothing(
    office: Office,
) -> None:
    desk = office.desk()
    phone = _value(office, desk.customers[8], F.PHONE)
    before = office.ledger.size()
    result = office.guard.search(_search(desk, F.PHONE, phone))
    assert not result.decision.allowed and result.rows == ()
    assert (
        "denied: search needs an open interaction with a customer of org-albion"
        in result.decision.reasons
    )
    assert office.ledger.entry(before)["decision"] == "deny"
    with office.store.engine.connect() as conn:
        assert approvals.disclosures(conn, customer_id=desk.customers[8]) == []


def test_a_search_from_outside_the_premises_is_denied(office: Office) -> None:
    desk, call = _in_call(office)
    phone = _value(office, desk.customers[9], F.PHONE)
    result = office.guard.search(
        _search(desk, F.PHONE, phone, interaction_id=call, source_ip="203.0.113.7")
    )
    assert not result.decision.allowed and result.rows == ()
    assert any("203.0.113.7 is outside the premises" in r for r in result.decision.reasons)


def test_a_search_of_another_clients_customers_from_this_call_is_denied(office: Office) -> None:
    desk, call = _in_call(office)
    other = office.desk("org-hudson")
    phone = _value(office, other.customers[0], F.PHONE)
    result = office.guard.search(
        _search(desk, F.PHONE, phone, interaction_id=call, client_id="org-hudson")
    )
    assert not result.decision.allowed and result.rows == ()


def test_a_search_may_show_only_fields_the_calls_purpose_needs(office: Office) -> None:
    desk, call = _in_call(office)
    unneeded = next(f for f in FieldType if f not in desk.fields)
    phone = _value(office, desk.customers[10], F.PHONE)
    result = office.guard.search(
        _search(desk, F.PHONE, phone, interaction_id=call, fields=(F.NAME, unneeded))
    )
    assert not result.decision.allowed
    assert any(f"does not need {unneeded.value}" in r for r in result.decision.reasons)


def test_a_value_nobody_has_finds_nothing_and_is_still_recorded(office: Office) -> None:
    desk, call = _in_call(office)
    before = office.ledger.size()
    result = office.guard.search(_search(desk, F.PHONE, "07700 900000", interaction_id=call))
    assert result.decision.allowed and result.rows == ()
    assert result.decision.reasons[-1] == "allowed: search by phone returned customers none"
    assert office.ledger.size() == before + 1


@pytest.mark.parametrize("field_", [F.NAME, F.DATE_OF_BIRTH, F.PASSPORT_NUMBER])
def test_search_by_a_field_that_is_not_searchable_is_refused(
    office: Office, field_: FieldType
) -> None:
    desk, call = _in_call(office)
    with pytest.raises(Exception, match="search by account_number, card_number, email, phone"):
        office.guard.search(_search(desk, field_, "anything", interaction_id=call))


class _CountingVault(Vault):
    """The real vault, noting which customers' values it decrypted."""

    def __init__(self, vault: Vault) -> None:
        super().__init__(vault.keys)
        self.opened: list[int] = []

    def get(
        self, conn: Connection, customer_id: int, fields: Sequence[FieldType]
    ) -> dict[FieldType, str]:
        self.opened.append(customer_id)
        return super().get(conn, customer_id, fields)


def test_a_search_decrypts_only_the_rows_it_returns(office: Office) -> None:
    desk, call = _in_call(office)
    wanted = desk.customers[11]
    phone = _value(office, wanted, F.PHONE)
    counting = _CountingVault(office.vault)
    guard = type(office.guard)(office.store, counting, office.guard._sink)
    result = guard.search(_search(desk, F.PHONE, phone, interaction_id=call))
    assert result.decision.allowed
    assert counting.opened == [wanted]
    counting.opened.clear()
    guard.search(_search(desk, F.PHONE, phone))  # denied
    assert counting.opened == []


def test_a_search_that_finds_a_canary_records_it_and_alerts(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    desk, call = _in_call(office)
    with office.store.engine.begin() as conn:
        (planted,) = canary.plant(
            conn, office.vault, desk.client, PlantOptions(count=1, seed=3),
            desk.at - dt.timedelta(days=1),
        )  # fmt: skip
    phone = _value(office, planted.customer_id, F.PHONE)
    with caplog.at_level(logging.CRITICAL, logger="bpoguard.canary"):
        result = office.guard.search(_search(desk, F.PHONE, phone, interaction_id=call))
    assert [row.customer_id for row in result.rows] == [planted.customer_id]
    with office.store.engine.connect() as conn:
        stored = canary.get_canary(conn, planted.customer_id)
    (seen,) = stored.exposures
    assert (seen.staff_id, seen.kind, seen.allowed, seen.ledger_index) == (
        desk.staff, canary.SHOWN_IN_SEARCH, True, result.decision.ledger_index)  # fmt: skip
    assert office.ledger.entry(result.decision.ledger_index)["canary"] is True  # type: ignore[arg-type]
    assert desk.staff in caplog.text and str(planted.customer_id) in caplog.text
    assert phone not in caplog.text


# --- budgets -------------------------------------------------------------------------------


def test_every_customer_a_search_returns_counts_against_the_shift_budget(
    open_office: Callable[..., Office],
) -> None:
    office = open_office(records_per_shift=3, records_per_hour=50)
    desk = office.desk()
    call = office.call(desk, desk.customers[0])
    assert office.guard.view(office.ask(desk, interaction_id=call)).decision.allowed  # 1
    for n, customer in enumerate(desk.customers[1:3], start=2):
        phone = _value(office, customer, F.PHONE)
        result = office.guard.search(_search(desk, F.PHONE, phone, interaction_id=call))
        assert result.decision.allowed, (n, result.decision.reasons)
    seen = _value(office, desk.customers[1], F.PHONE)
    again = office.guard.search(_search(desk, F.PHONE, seen, interaction_id=call))
    assert again.decision.allowed, "a customer already counted does not count twice"
    unseen = _value(office, desk.customers[3], F.PHONE)
    over = office.guard.search(_search(desk, F.PHONE, unseen, interaction_id=call))
    assert not over.decision.allowed and over.rows == ()
    assert any("shift budget of 3 distinct customers" in r for r in over.decision.reasons)
