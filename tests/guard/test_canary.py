"""Canary customers: planted like real ones, never reached honestly, and tied back when touched."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from bpoguard.access import Verb
from bpoguard.fields import FieldType
from bpoguard.guard import canary
from bpoguard.guard.canary import CanaryError, PlantOptions
from bpoguard.store import models as m
from bpoguard.validators import FIELD_COUNTRIES, validate

if TYPE_CHECKING:
    from conftest import Office

AT = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
GB_PHONES = ("07700 900461", "+44 7700 900462", "07700900463")


def _agents(office: Office, client: str = "org-albion", count: int = 2) -> list[str]:
    with office.store.session() as s:
        ids = s.scalars(
            select(m.Staff.id)
            .where(m.Staff.role == m.StaffRole.AGENT, m.Staff.left.is_(None))
            .order_by(m.Staff.id)
        ).all()
    return list(ids[-count:])


def _plant(office: Office, client: str = "org-albion", **options: object) -> list[canary.Canary]:
    settings: dict[str, object] = {"count": 3, "seed": 11}
    settings.update(options)
    with office.store.engine.begin() as conn:
        return canary.plant(conn, office.vault, client, PlantOptions(**settings), AT)  # type: ignore[arg-type]


def _count(office: Office, table: object) -> int:
    with office.store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


# --- planting ----------------------------------------------------------------------------


def test_planted_canaries_are_valid_customers_in_the_vault(office: Office) -> None:
    planted = _plant(office, count=4)
    fields = FIELD_COUNTRIES["GB"]
    with office.store.engine.connect() as conn:
        for c in planted:
            row = conn.execute(select(m.Customer).where(m.Customer.id == c.customer_id)).one()
            assert (row.client_id, row.country, row.is_canary) == ("org-albion", "GB", True)
            values = office.vault.get(conn, c.customer_id, fields)
            assert set(values) == set(fields), "a canary has every field a real customer has"
            for field_, value in values.items():
                assert validate(field_, value, "GB") == value  # valid and already normalised
    with office.store.engine.connect() as conn:
        listed = {c.customer_id for c in canary.list_canaries(conn, "org-albion")}
    assert {c.customer_id for c in planted} <= listed


def test_canary_refs_are_shaped_like_the_clients_own(office: Office) -> None:
    with office.store.session() as s:
        real = s.scalars(
            select(m.Customer.ref).where(
                m.Customer.client_id == "org-albion", m.Customer.is_canary.is_(False)
            )
        ).first()
    assert real is not None
    shape = re.sub(r"\d", "9", real)
    for c in _plant(office, count=2):
        assert re.sub(r"\d", "9", c.ref) == shape, (c.ref, real)


def test_shown_to_deals_canaries_to_the_agents_in_turn(office: Office) -> None:
    first, second = _agents(office)
    planted = _plant(office, count=5, shown_to=(first, second))
    assert [c.shown_to for c in planted] == [first, second, first, second, first]
    with office.store.engine.connect() as conn:
        for c in planted:
            stored = canary.get_canary(conn, c.customer_id)
            assert [(e.staff_id, e.kind) for e in stored.exposures] == [
                (c.shown_to, canary.ASSIGNED)
            ]
            assert stored.touched_by == (), "a placement is not a touch"


def test_monitored_phone_numbers_are_stored_normalised_and_found(office: Office) -> None:
    planted = _plant(office, count=3, phones=GB_PHONES)
    with office.store.engine.connect() as conn:
        for c, phone in zip(planted, GB_PHONES, strict=True):
            stored = office.vault.get(conn, c.customer_id, [FieldType.PHONE])[FieldType.PHONE]
            assert stored == validate(FieldType.PHONE, phone, "GB")
            assert office.vault.lookup(conn, "org-albion", FieldType.PHONE, phone) == [
                c.customer_id
            ]


def test_email_domain_gives_every_canary_an_address_the_client_receives(office: Office) -> None:
    planted = _plant(office, count=3, email_domain="canary.albion-bank.example")
    with office.store.engine.connect() as conn:
        for c in planted:
            email = office.vault.get(conn, c.customer_id, [FieldType.EMAIL])[FieldType.EMAIL]
            local, _, domain = email.partition("@")
            assert local and domain == "canary.albion-bank.example"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"count": 0}, "--count must be between 1 and"),
        ({"count": 10_001}, "--count must be between 1 and"),
        ({"count": 3, "phones": GB_PHONES[:2]}, "2 phone numbers given for 3 canaries"),
        ({"count": 1, "email_domain": "not a domain"}, "--email-domain must be a domain"),
        ({"count": 1, "shown_to": ("NOBODY-1",)}, "no staff member NOBODY-1"),
        ({"count": 2, "phones": ("07700 900461", "12")}, "canary 2: "),
    ],
)
def test_bad_plant_options_are_refused_and_nothing_is_planted(
    office: Office, options: dict[str, object], message: str
) -> None:
    before = _count(office, canary.canaries), _count(office, m.Customer)
    with pytest.raises(CanaryError, match=re.escape(message)) as raised:
        _plant(office, **options)
    assert "\n" not in str(raised.value)
    assert "12" not in str(raised.value).split(":", 1)[-1], "the bad value is not repeated"
    assert (_count(office, canary.canaries), _count(office, m.Customer)) == before


@pytest.mark.parametrize("client", ["org-meridian", "org-nowhere"])
def test_canaries_are_planted_only_for_a_client(office: Office, client: str) -> None:
    with pytest.raises(CanaryError, match=f"no client {client}"):
        _plant(office, client=client)


def test_the_same_seed_plants_the_same_people(office: Office) -> None:
    one, two = _plant(office, count=2, seed=5), _plant(office, count=2, seed=5)
    with office.store.engine.connect() as conn:
        for a, b in zip(one, two, strict=True):
            assert office.vault.get(conn, a.customer_id, [FieldType.NAME]) == office.vault.get(
                conn, b.customer_id, [FieldType.NAME]
            )


# --- touching ----------------------------------------------------------------------------


def test_viewing_a_canary_records_the_exposure_with_its_ledger_entry_and_alerts(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    desk = office.desk()
    (planted,) = _plant(office, count=1, shown_to=(desk.staff,))
    call = office.call(desk, planted.customer_id)
    with caplog.at_level(logging.INFO, logger="bpoguard.canary"):
        seen = office.guard.view(
            office.ask(desk, customer_id=planted.customer_id, interaction_id=call)
        )
    assert seen.decision.allowed, seen.decision.reasons
    with office.store.engine.connect() as conn:
        stored = canary.get_canary(conn, planted.customer_id)
        values = office.vault.get(conn, planted.customer_id, FIELD_COUNTRIES["GB"])
    assert stored.touched_by == (desk.staff,)
    touch = stored.exposures[-1]
    assert (touch.kind, touch.allowed, touch.ledger_index) == (
        "view", True, seen.decision.ledger_index)  # fmt: skip
    assert office.ledger.entry(seen.decision.ledger_index)["canary"] is True  # type: ignore[arg-type]
    alerts = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(alerts) == 1
    line = alerts[0].getMessage()
    assert desk.staff in line and str(planted.customer_id) in line
    for value in values.values():
        assert value not in caplog.text
    for value in seen.values.values():
        assert value not in caplog.text, "not even the masked slice is logged"


def test_a_denied_reveal_of_a_canary_is_still_an_exposure_naming_the_agent(
    office: Office, caplog: pytest.LogCaptureFixture
) -> None:
    desk = office.desk()
    (planted,) = _plant(office, count=1)
    request = office.ask(desk, Verb.REVEAL, customer_id=planted.customer_id,
                         fields=(FieldType.CARD_NUMBER,), reason="caller asked")  # fmt: skip
    with caplog.at_level(logging.CRITICAL, logger="bpoguard.canary"):
        revealed = office.guard.reveal(request)
    assert not revealed.decision.allowed and revealed.value is None
    with office.store.engine.connect() as conn:
        stored = canary.get_canary(conn, planted.customer_id)
    assert [(e.staff_id, e.kind, e.allowed) for e in stored.exposures] == [
        (desk.staff, "reveal", False)
    ]
    assert stored.exposures[0].ledger_index == revealed.decision.ledger_index
    assert any(desk.staff in r.getMessage() and "denied" in r.getMessage() for r in caplog.records)


def test_the_exposure_commits_or_rolls_back_with_the_decision(office: Office) -> None:
    desk = office.desk()
    (planted,) = _plant(office, count=1)
    ledger_before = office.ledger.size()
    with office.store.engine.connect() as conn:
        transaction = conn.begin()
        guard = type(office.guard)(office.store, office.vault, office.guard._sink, conn=conn)
        decision = guard.request(office.ask(desk, customer_id=planted.customer_id))
        assert decision.ledger_index is not None
        transaction.rollback()
    with office.store.engine.connect() as conn:
        assert canary.get_canary(conn, planted.customer_id).exposures == ()
    assert office.ledger.size() == ledger_before


def test_touching_a_real_customer_records_no_exposure(office: Office) -> None:
    desk = office.desk()
    before = _count(office, canary.canary_exposures)
    call = office.call(desk, desk.customers[0])
    assert office.guard.view(office.ask(desk, interaction_id=call)).decision.allowed
    assert _count(office, canary.canary_exposures) == before


# --- reports -----------------------------------------------------------------------------


def test_a_call_to_a_canary_number_ties_back_to_the_canary_and_the_agent(office: Office) -> None:
    desk = office.desk()
    phones = ("07700 900471", "07700 900472")
    planted = _plant(office, count=2, phones=phones, shown_to=(desk.staff,))
    office.guard.request(office.ask(desk, customer_id=planted[1].customer_id))  # a touch
    with office.store.engine.begin() as conn:
        # The number as a telco would write it: international, no spaces.
        found = canary.report(conn, office.vault, FieldType.PHONE, "+447700900472",
                              dt.date(2026, 3, 20), AT, note="scam call reported")  # fmt: skip
    assert [c.customer_id for c in found] == [planted[1].customer_id]
    assert found[0].shown_to == desk.staff and found[0].touched_by == (desk.staff,)
    with office.store.engine.connect() as conn:
        rows = conn.execute(select(canary.canary_reports)).all()
    assert any(r.customer_id == planted[1].customer_id and r.field == "phone" for r in rows)


def test_a_report_by_email_finds_the_canary(office: Office) -> None:
    (planted,) = _plant(office, count=1, email_domain="trap.example.org")
    with office.store.engine.connect() as conn:
        email = office.vault.get(conn, planted.customer_id, [FieldType.EMAIL])[FieldType.EMAIL]
    with office.store.engine.begin() as conn:
        found = canary.report(conn, office.vault, FieldType.EMAIL, email.upper(),
                              dt.date(2026, 3, 21), AT)  # fmt: skip
    assert [c.customer_id for c in found] == [planted.customer_id]


def test_a_report_of_a_real_customers_number_matches_no_canary(office: Office) -> None:
    desk = office.desk()
    before = _count(office, canary.canary_reports)
    with office.store.engine.connect() as conn:
        phone = office.vault.get(conn, desk.customers[0], [FieldType.PHONE])[FieldType.PHONE]
    with office.store.engine.begin() as conn:
        found = canary.report(conn, office.vault, FieldType.PHONE, phone, dt.date(2026, 3, 20), AT)
    assert found == []
    assert _count(office, canary.canary_reports) == before


@pytest.mark.parametrize(
    ("field_", "note", "message"),
    [
        (FieldType.NAME, None, "a report names a canary's phone number or e-mail address"),
        (FieldType.PHONE, "x" * 201, "--note must be at most 200 characters"),
    ],
)
def test_bad_reports_are_refused(
    office: Office, field_: FieldType, note: str | None, message: str
) -> None:
    with office.store.engine.begin() as conn, pytest.raises(CanaryError, match=re.escape(message)):
        canary.report(conn, office.vault, field_, "07700 900471", dt.date(2026, 3, 20), AT, note)


# --- the simulator's canaries ------------------------------------------------------------


def test_the_simulators_canaries_are_in_truth_and_never_reached_by_a_call(office: Office) -> None:
    truth = json.loads((office.ws.settings.sim_dir / "truth.json").read_text())
    listed = {int(i) for ids in truth["canaries"].values() for i in ids}
    assert listed, "the simulator plants canaries"
    with office.store.engine.connect() as conn:
        simulated = [c for c in canary.list_canaries(conn) if c.planted_by == "simulator"]
        called = set(
            conn.scalars(
                select(m.Interaction.customer_id).where(m.Interaction.customer_id.in_(listed))
            )
        )
    assert {c.customer_id for c in simulated} == listed
    assert called == set()
    for c in simulated:
        assert c.shown_to is not None
        assert [e.kind for e in c.exposures] == [canary.ASSIGNED], "no honest call touched it"
