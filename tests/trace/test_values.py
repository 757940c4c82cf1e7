"""Recognising customer values in dump cells with the guard's validators."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bpoguard.errors import InputError
from bpoguard.fields import FieldType as F
from bpoguard.trace.values import COUNTRIES, SAME_IN_EVERY_COUNTRY, recognise
from bpoguard.validators import validate

CARD = "4960915376413372"  # passes Luhn, Visa prefix
IBAN = "GB62BARC20097733149208"


def _found(*cells: tuple[str | None, str]) -> set[tuple[F, str]]:
    return {(f.field, f.canonical) for f in recognise(cells).found}


def test_card_numbers_in_groups_dashes_or_whole_are_found() -> None:
    for text in (CARD, "4960 9153 7641 3372", "4960-9153-7641-3372", " 4960.9153.7641.3372 "):
        assert (F.CARD_NUMBER, CARD) in _found((None, text))


def test_a_number_failing_luhn_is_not_a_card() -> None:
    assert (F.CARD_NUMBER, "4960915376413373") not in _found((None, "4960 9153 7641 3373"))


def test_lower_case_iban_and_spaced_nino_are_normalised() -> None:
    found = _found((None, "iban gb62 barc 2009 7733 1492 08, ni sn 42 69 42 c"))
    assert (F.IBAN, IBAN) in found
    assert (F.NINO, "SN426942C") in found


def test_column_names_decide_between_readings() -> None:
    # Nine digits could be a passport or an account number; the column says which.
    assert _found(("PP no", "188275671")) == {(F.PASSPORT_NUMBER, "188275671")}
    assert (F.ACCOUNT_NUMBER, "188275671") in _found((None, "188275671"))


def test_national_phone_numbers_become_e164() -> None:
    found = _found(("Mob", "07291 522458"))
    assert (F.PHONE, "+447291522458") in found


def test_free_text_line_yields_every_value() -> None:
    line = (
        "henry freeman -- 2247 4284 1479 2152 s/c 20-09-77 acc 33149208 "
        "henry.freeman90@virginmedia.com freem612107h99jw"
    )
    found = _found((None, line))
    assert {(F.CARD_NUMBER, "2247428414792152"), (F.EMAIL, "henry.freeman90@virginmedia.com"),
            (F.DRIVING_LICENCE, "FREEM612107H99JW"), (F.ACCOUNT_NUMBER, "33149208")} <= found  # fmt: skip


def test_masked_and_last_four_values_are_partials_not_matches() -> None:
    for cells in (
        [(None, "**** **** **** 3372")],
        [(None, "card ending 3372")],
        [("last4", "3372")],
    ):
        sighting = recognise(cells)
        assert sighting.found == []
        assert [(p.field, p.suffix) for p in sighting.partials] == [(F.CARD_NUMBER, "3372")]


def test_a_partial_beside_a_full_value_keeps_both() -> None:
    sighting = recognise([(None, f"{CARD} xxxx xxxx 2152")])
    assert (F.CARD_NUMBER, CARD) in {(f.field, f.canonical) for f in sighting.found}
    assert [p.suffix for p in sighting.partials] == ["2152"]


def test_names_without_identifiers_are_present_but_not_matchable() -> None:
    sighting = recognise([("Full Name", "Henry Freeman")])
    assert sighting.found == []
    assert F.NAME in sighting.fields


@given(st.text(max_size=200))
def test_any_text_is_recognised_without_raising(text: str) -> None:
    sighting = recognise([(None, text), ("card", text)])
    for found in sighting.found:
        assert found.canonical  # only values that passed a validator


def test_long_runs_of_mask_characters_and_letters_are_read_in_linear_time() -> None:
    # These once backtracked without end (nested quantifiers, an e-mail pattern
    # retried from every position); now they finish and still find the card.
    assert (F.CARD_NUMBER, "4111111111111111") in _found((None, "x" * 700 + "}4111 1111 1111 1111"))
    assert _found((None, "ab." * 5000)) == set()
    assert recognise([(None, "x " * 8000)]).found == []


_COUNTRY_FREE_SAMPLES = st.sampled_from(
    [CARD, "4960915376413373", IBAN, "gb62 barc 2009 7733 1492 08", "SN426942C", "AFZPK7190K",
     "A@B.CO", "x@y", "4111111111111111", "5500 0000 0000 0004"]
)  # fmt: skip


@given(
    field=st.sampled_from(sorted(SAME_IN_EVERY_COUNTRY, key=lambda f: f.value)),
    text=st.one_of(
        _COUNTRY_FREE_SAMPLES, st.text(alphabet="0123456789 AGBZNPKafz@.-", max_size=24)
    ),
)
def test_fields_validated_once_are_valid_alike_in_every_country(field: F, text: str) -> None:
    # recognise validates these once, not once a country: the validators must agree.
    outcomes = set()
    for country in COUNTRIES:
        try:
            outcomes.add(validate(field, text, country))
        except InputError:
            outcomes.add(None)
    assert len(outcomes) == 1


@given(
    text=st.one_of(
        st.sampled_from(["+44 7700 900123", "0044-7700-900123", "+44 (0)20 7946 0018",
                         "+1 (415) 555-0132", "00 91 98765 43210", "+91.98765.43210", "+0"]),
        st.builds(lambda lead, rest: lead + rest, st.sampled_from(["+", "00", " +", "(+", "-00"]),
                  st.text(alphabet="0123456789 -.()/", max_size=20)),
    )
)  # fmt: skip
def test_phones_with_a_country_code_are_valid_alike_in_every_country(text: str) -> None:
    # recognise validates "+..." and "00..." numbers once, not once a country.
    outcomes = set()
    for country in COUNTRIES:
        try:
            outcomes.add(validate(F.PHONE, text, country))
        except InputError:
            outcomes.add(None)
    assert len(outcomes) == 1
