"""Masking rules: each field shows at most what its rule allows, whatever the input."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpoguard.fields import FieldType
from bpoguard.guard.masking import mask, mask_slice
from bpoguard.simulate.identities import IdentityFactory
from bpoguard.validators import normalise

F = FieldType
DIGITS = re.compile(r"[0-9]")


def digits(text: str) -> str:
    return "".join(DIGITS.findall(text))


def alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum())


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        (F.CARD_NUMBER, "5449114207872083", "•••• •••• •••• 2083"),
        (F.CARD_NUMBER, "378282246310005", "•••• •••• •••• 0005"),
        (F.ACCOUNT_NUMBER, "00461722", "•••••722"),
        (F.IBAN, "GB80ABBY09510700461722", "GB•••••722"),
        (F.SORT_CODE, "095107", "••-••-07"),
        (F.DATE_OF_BIRTH, "1956-09-06", "06 Sep ••••"),
        (F.DATE_OF_BIRTH, "06/09/1956", "06 Sep ••••"),
        (F.PASSPORT_NUMBER, "171031950", "•••••950"),
        (F.DRIVING_LICENCE, "HUGHE559066S99GH", "•••••9GH"),
        (F.NINO, "KC998112C", "•••••12C"),
        (F.PAN, "GAOPA8461K", "•••••61K"),
        (F.NAME, "Sandra  Hughes", "Sandra Hughes"),
        (F.ADDRESS, "74 Pickering Close, Brighton, BN19 8ST", "Brighton BN19"),
        (F.ADDRESS, "Flat 2, 43 Manning Way, Liverpool, L15 4EF", "Liverpool L15"),
        (F.ADDRESS, "7767 Garner Ave, Phoenix, AZ 85096", "Phoenix, AZ 850"),
        (F.ADDRESS, "H.No. 371, Pathak Path, Ranchi, Jharkhand 834086", "Ranchi, Jharkhand 834"),
        (
            F.ADDRESS,
            "Flat 73, Zachariah Street, Mangaluru, Karnataka 575052",
            "Mangaluru, Karnataka 575",
        ),
        (F.PHONE, "+447800573207", "•••••••207"),
        (F.EMAIL, "shughes@btinternet.com", "s•••@btinternet.com"),
        (F.BALANCE, "5060.02", "••••"),
        (F.NOTES, "Wants a new PIN sent by post.", "Wants a new PIN sent by post."),
    ],
)
def test_each_field_type_shows_what_its_rule_allows(
    field: FieldType, value: str, shown: str
) -> None:
    assert mask(field, value) == shown


def test_every_field_type_has_a_masking_rule() -> None:
    for field in FieldType:
        assert isinstance(mask(field, "x"), str)


def test_notes_hide_numbers_an_agent_typed_in() -> None:
    note = "Customer read card 4111 1111 1111 1111 and account 12-34-56 aloud"
    masked = mask(F.NOTES, note)
    assert "4111" not in masked and "1111" not in masked and "34" not in masked
    assert masked.startswith("Customer read card ")


def test_address_that_is_not_understood_is_hidden_whole() -> None:
    assert mask(F.ADDRESS, "somewhere near the station") == "••••"
    assert mask(F.ADDRESS, "12 High Street, 42 Other Road, XX") == "••••"


def test_values_too_short_to_mask_are_not_shown_in_part() -> None:
    assert mask(F.CARD_NUMBER, "1234") == "••••"
    assert mask(F.ACCOUNT_NUMBER, "12345") == "•••••"
    assert mask(F.PASSPORT_NUMBER, "AB1") == "•••••"
    assert mask(F.SORT_CODE, "12") == "••-••-••"


def test_mask_slice_masks_each_requested_field_it_holds() -> None:
    values = {"name": "Sandra Hughes", "card_number": "5449114207872083", "balance": "1.00"}
    got = mask_slice([F.NAME, F.CARD_NUMBER, F.SORT_CODE], values)
    assert got == {F.NAME: "Sandra Hughes", F.CARD_NUMBER: "•••• •••• •••• 2083"}


@pytest.mark.parametrize("country", ["GB", "US", "IN"])
def test_simulated_customers_mask_to_the_documented_shapes(country: str) -> None:
    for row in IdentityFactory(7).batch(country, 200):
        masked = mask_slice(list(FieldType), row)
        assert masked[F.CARD_NUMBER] == "•••• •••• •••• " + row["card_number"][-4:]
        assert masked[F.DATE_OF_BIRTH].endswith(" ••••")
        town = row["address"].split(", ")[-2]
        assert masked[F.ADDRESS].startswith(town + (" " if country == "GB" else ", "))
        house = row["address"].split(", ")[0]
        assert house not in masked[F.ADDRESS]
        canonical = mask(F.ADDRESS, normalise(F.ADDRESS, row["address"], country))
        assert canonical.casefold() == masked[F.ADDRESS].casefold()


# --- never more than the rule allows, whatever the input ---------------------

card_numbers = st.text(alphabet="0123456789 -", min_size=0, max_size=30)


@given(card_numbers)
def test_masked_card_never_shows_more_than_its_last_four_digits(value: str) -> None:
    shown = digits(mask(F.CARD_NUMBER, value))
    assert len(shown) <= 4
    assert digits(value).endswith(shown)
    assert len(shown) * 2 <= len(digits(value)) or not shown


@given(
    st.sampled_from([F.ACCOUNT_NUMBER, F.PASSPORT_NUMBER, F.DRIVING_LICENCE, F.NINO, F.PAN]),
    st.text(),
)
def test_masked_identifier_never_shows_more_than_its_last_three_characters(
    field: FieldType, value: str
) -> None:
    shown = alnum(mask(field, value))
    assert len(shown) <= 3
    assert alnum(value).upper().endswith(shown)


@given(st.text())
def test_masked_iban_shows_country_and_at_most_three_more(value: str) -> None:
    shown = alnum(mask(F.IBAN, value))
    assert len(shown) <= 5


@given(st.dates(), st.booleans())
def test_masked_date_of_birth_never_shows_the_year(born: dt.date, day_first: bool) -> None:
    text = born.strftime("%d/%m/%Y") if day_first else born.isoformat()
    masked = mask(F.DATE_OF_BIRTH, text)
    assert f"{born.year:04d}" not in masked
    assert masked.endswith("••••")
    assert len(digits(masked)) <= 2


@given(st.text())
def test_masked_balance_and_phone_show_at_most_their_rule(value: str) -> None:
    assert digits(mask(F.BALANCE, value)) == ""
    assert len(digits(mask(F.PHONE, value))) <= 3


@given(
    st.integers(1, 9999),
    st.from_regex(r"[A-Z][a-z]{2,12} (Close|Road|Street|Way)", fullmatch=True),
    st.from_regex(r"[A-Z][a-z]{3,12}", fullmatch=True),
    st.from_regex(r"[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}", fullmatch=True),
)
def test_masked_address_never_shows_house_or_street(
    house: int, street: str, town: str, postcode: str
) -> None:
    masked = mask(F.ADDRESS, f"{house} {street}, {town}, {postcode}")
    district = postcode.split()[0]
    assert masked == f"{town} {district}"
    assert str(house) not in masked.removesuffix(district)
    assert street not in masked


@given(st.text())
def test_masked_notes_never_hold_a_run_of_six_digits(value: str) -> None:
    assert re.search(r"[0-9](?:[ \-]?[0-9]){5,}", mask(F.NOTES, value)) is None


@given(st.sampled_from(list(FieldType)), st.text())
def test_mask_never_raises(field: FieldType, value: str) -> None:
    assert isinstance(mask(field, value), str)
