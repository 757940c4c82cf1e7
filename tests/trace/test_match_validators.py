"""valid_forms() says what validate() says, country by country, for every field type."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard.errors import InputError
from bpoguard.fields import FieldType as F
from bpoguard.validators import FIELD_COUNTRIES, InvalidValue, valid_forms, validate

_COUNTRIES = tuple(FIELD_COUNTRIES)
_TODAY = date(2026, 1, 1)

# Values near each format's edges: the right lengths, wrong letters, odd separators,
# other scripts' digits (which str.isdigit accepts and the formats do not).
_SAMPLES = st.sampled_from(
    ["12345678", "123456789", "1234567", "12345678901234567", "123456789012345678",
     "4111111111111111", "4111 1111 1111 1112", "378282246310005", "6011000990139424",
     "282833393", "A12345678", "K1234567", "a1234567", "ROBSO806117C99PO", "MORGA753116SM9IJ",
     "MH1220110012345", "XX1220110012345", "D1234567", "07700 900123", "020 7946 0018",
     "(415) 555-0132", "98765 43210", "+44 7700 900123", "+1 415 555 0132", "0091 98765 43210",
     "+0", "", " ", "١٢٣٤٥٦٧٨", "12345６78", "1980-06-11", "11/06/1980", "SN426942C",
     "AFZPK7190K", "GB62BARC20097733149208", "a@b.co", "60-89-36", "ẞ1234567"]
)  # fmt: skip
_TEXT = st.one_of(
    _SAMPLES,
    st.text(alphabet="0123456789 -.()+/ABCDEFGHKMPRSXZabkxß", max_size=22),
    st.text(max_size=12),
)


def _by_validate(field: F, text: str) -> list[tuple[str, str]]:
    forms = []
    for country in _COUNTRIES:
        try:
            forms.append((country, validate(field, text, country, today=_TODAY)))
        except InputError:
            continue
    return forms


@settings(max_examples=400)
@given(field=st.sampled_from(list(F)), text=_TEXT)
def test_valid_forms_agrees_with_validate(field: F, text: str) -> None:
    assert valid_forms(field, text, _COUNTRIES, today=_TODAY) == _by_validate(field, text)


@pytest.mark.parametrize(
    ("field", "text", "country", "rule"),
    [
        (F.ACCOUNT_NUMBER, "1234567", "GB", "account number must have 8 digits"),
        (F.ACCOUNT_NUMBER, "1234567", "US", "account number must have 8 to 17 digits"),
        (F.CARD_NUMBER, "4111111111111112", "GB", "card number fails the Luhn check"),
        (F.CARD_NUMBER, "9111111111111111", "GB",
         "card number does not start with a known card scheme prefix"),
        (F.PASSPORT_NUMBER, "K123456", "IN", "passport number must be a letter and 7 digits"),
        (F.DRIVING_LICENCE, "ROBSO806117C99P", "GB",
         "driving licence number does not fit the DVLA format"),
        (F.PHONE, "+44 0700 900123", "GB", "phone number does not fit the UK plan"),
        (F.PHONE, "12", "US", "phone number is not a number in E.164 form"),
    ],
)  # fmt: skip
def test_the_checks_still_name_the_rule_broken(
    field: F, text: str, country: str, rule: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate(field, text, country)
    assert str(caught.value) == rule
    assert text not in str(caught.value) or not text.strip()
    assert valid_forms(field, text, [country]) == []


def test_an_unknown_country_is_refused_as_validate_refuses_it() -> None:
    with pytest.raises(InputError, match="unknown client country"):
        valid_forms(F.ACCOUNT_NUMBER, "12345678", ["GB", "FR"])
