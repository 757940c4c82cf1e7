"""The shared field validators: what they accept, what they refuse, and what they never say."""

from __future__ import annotations

import pickle
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.validators import _CARD_RANGES as _CARD_TABLE
from bpoguard.validators import (
    FIELD_COUNTRIES,
    InvalidValue,
    luhn_check_digit,
    normalise,
    validate,
)

F = FieldType
TODAY = date(2026, 6, 1)

ACCEPTED = [
    (F.CARD_NUMBER, "4111 1111 1111 1111", "GB", "4111111111111111"),
    (F.CARD_NUMBER, "3782-822463-10005", "US", "378282246310005"),
    (F.CARD_NUMBER, "2221 0000 0000 0009", "GB", "2221000000000009"),
    (F.SORT_CODE, "12-34-56", "GB", "123456"),
    (F.SORT_CODE, "12 34 56", "GB", "123456"),
    (F.IBAN, "gb82 west 1234 5698 7654 32", "GB", "GB82WEST12345698765432"),
    (F.NINO, "ab 12 34 56 c", "GB", "AB123456C"),
    (F.PAN, "abcpd 1234 e", "IN", "ABCPD1234E"),
    (F.PHONE, "07700 900123", "GB", "+447700900123"),
    (F.PHONE, "+44 (0)20 7946 0018", "GB", "+442079460018"),
    (F.PHONE, "0044-7700-900123", "GB", "+447700900123"),
    (F.PHONE, "(415) 555-0132", "US", "+14155550132"),
    (F.PHONE, "1-415-555-0132", "US", "+14155550132"),
    (F.PHONE, "098765 43210", "IN", "+919876543210"),
    (F.PHONE, "98765 43210", "IN", "+919876543210"),
    (F.PHONE, "+1 415 555 0132", "GB", "+14155550132"),
    (F.EMAIL, "  Jane.Doe@Example.COM ", "GB", "jane.doe@example.com"),
    (F.NAME, "  Mary   O'Neill ", "GB", "mary o'neill"),
    (F.NAME, "प्रिया शर्मा", "IN", "प्रिया शर्मा"),
    (F.DATE_OF_BIRTH, "05/11/1980", "GB", "1980-11-05"),
    (F.DATE_OF_BIRTH, "1980-1-5", "GB", "1980-01-05"),
    (F.BALANCE, "1,234.5", "GB", "1234.50"),
    (F.BALANCE, "1,23,456.78", "IN", "123456.78"),
    (F.BALANCE, "-0.00", "GB", "0.00"),
    (F.BALANCE, "-007", "US", "-7.00"),
    (F.PASSPORT_NUMBER, "123 456 789", "GB", "123456789"),
    (F.PASSPORT_NUMBER, "a12345678", "US", "A12345678"),
    (F.PASSPORT_NUMBER, "123456789", "US", "123456789"),
    (F.PASSPORT_NUMBER, "j8369854", "IN", "J8369854"),
    (F.DRIVING_LICENCE, "morga 753116 sm9ij", "GB", "MORGA753116SM9IJ"),
    (F.DRIVING_LICENCE, "LI999 862155 J99AB", "GB", "LI999862155J99AB"),
    (F.DRIVING_LICENCE, "a1234567", "US", "A1234567"),
    (F.DRIVING_LICENCE, "MH-12 2011 0062821", "IN", "MH1220110062821"),
    (F.ACCOUNT_NUMBER, "1234 5678", "GB", "12345678"),
    (F.ACCOUNT_NUMBER, "000123456789", "US", "000123456789"),
    (F.ACCOUNT_NUMBER, "123456789012", "IN", "123456789012"),
    (F.ADDRESS, "1 High St ,London  SW1A 1AA", "GB", "1 high st, london sw1a 1aa"),
    (F.NOTES, "Called  about\n the card", "GB", "Called about the card"),
    (F.NOTES, "", "GB", ""),
]


@pytest.mark.parametrize(("field", "raw", "country", "canonical"), ACCEPTED)
def test_accepts_written_forms_and_returns_the_canonical_one(
    field: FieldType, raw: str, country: str, canonical: str
) -> None:
    assert validate(field, raw, country, today=TODAY) == canonical


REJECTED = [
    (F.CARD_NUMBER, "4111 1111 1111 1112", "GB", "fails the Luhn check"),
    (F.CARD_NUMBER, "4111-1111-1111", "GB", "13 to 19 digits"),
    (F.CARD_NUMBER, "4111 1111 1111 1111 0000", "GB", "13 to 19 digits"),
    (F.CARD_NUMBER, "4111 1111 1111 111A", "GB", "13 to 19 digits"),
    (F.CARD_NUMBER, "9111 1111 1111 1111", "GB", "known card scheme prefix"),
    (F.CARD_NUMBER, "3782 8224 6310 0051", "US", "wrong length for its card scheme"),
    (F.IBAN, "GB83 WEST 1234 5698 7654 32", "GB", "mod-97 check"),
    (F.IBAN, "GB82 WEST 1234 5698 7654", "GB", "wrong length or layout"),
    (F.NINO, "DA 12 34 56 A", "GB", "two letters, six digits, A-D"),
    (F.NINO, "AO 12 34 56 A", "GB", "two letters, six digits, A-D"),
    (F.NINO, "AB 12 34 56 E", "GB", "two letters, six digits, A-D"),
    (F.NINO, "AB 12 34 5 A", "GB", "two letters, six digits, A-D"),
    (F.NINO, "BG 12 34 56 A", "GB", "prefix HMRC never allocates"),
    (F.NINO, "TN 12 34 56 A", "GB", "prefix HMRC never allocates"),
    (F.PAN, "ABCXD1234E", "IN", "holder type"),
    (F.PAN, "ABCPD0000E", "IN", "holder type"),
    (F.PAN, "ABCPD12345", "IN", "holder type"),
    (F.SORT_CODE, "12-34-5", "GB", "6 digits"),
    (F.SORT_CODE, "12-34-5X", "GB", "6 digits"),
    (F.ACCOUNT_NUMBER, "1234567", "GB", "8 digits"),
    (F.ACCOUNT_NUMBER, "1234567", "US", "8 to 17 digits"),
    (F.ACCOUNT_NUMBER, "12345678", "IN", "9 to 18 digits"),
    (F.PASSPORT_NUMBER, "12345678", "GB", "9 digits"),
    (F.PASSPORT_NUMBER, "AB1234567", "US", "letter and 8 digits"),
    (F.PASSPORT_NUMBER, "12345678", "IN", "a letter and 7 digits"),
    (F.DRIVING_LICENCE, "MORGA713116SM9IJ", "GB", "DVLA format"),
    (F.DRIVING_LICENCE, "MORGA753326SM9IJ", "GB", "DVLA format"),
    (F.DRIVING_LICENCE, "MO9GA753116SM9IJ", "GB", "DVLA format"),
    (F.DRIVING_LICENCE, "MORGA753116SM9I", "GB", "DVLA format"),
    (F.DRIVING_LICENCE, "AB1234567", "US", "letter and 7 to 12 digits"),
    (F.DRIVING_LICENCE, "XX1220110062821", "IN", "state code"),
    (F.DRIVING_LICENCE, "MH1218110062821", "IN", "state code"),
    (F.PHONE, "+44 20 7946", "GB", "UK plan"),
    (F.PHONE, "+1 015 555 0132", "US", "North American plan"),
    (F.PHONE, "+91 98765 4321", "IN", "Indian plan"),
    (F.PHONE, "call me maybe", "GB", "E.164 form"),
    (F.EMAIL, "jane.doe@", "GB", "name@domain.tld"),
    (F.EMAIL, "jane..doe@example.com", "GB", "name@domain.tld"),
    (F.EMAIL, "jane doe@example.com", "GB", "name@domain.tld"),
    (F.DATE_OF_BIRTH, "31/02/1980", "GB", "real calendar date"),
    (F.DATE_OF_BIRTH, "2015-03-04", "GB", "age under 16"),
    (F.DATE_OF_BIRTH, "1890-03-04", "GB", "age over 120"),
    (F.DATE_OF_BIRTH, "March 4th 1980", "GB", "DD/MM/YYYY or YYYY-MM-DD"),
    (F.BALANCE, "12.345", "GB", "2 decimal places"),
    (F.BALANCE, "twelve pounds", "GB", "2 decimal places"),
    (F.NAME, "R2-D2 Droid", "GB", "only letters"),
    (F.NAME, "   ", "GB", "is empty"),
    (F.ADDRESS, "12345 67890", "GB", "has no letters"),
    (F.NOTES, "x" * 2001, "GB", "longer than 2000 characters"),
]


@pytest.mark.parametrize(("field", "raw", "country", "rule"), REJECTED)
def test_rejects_bad_values_naming_the_field_and_the_rule(
    field: FieldType, raw: str, country: str, rule: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate(field, raw, country, today=TODAY)
    assert rule in str(caught.value)
    assert caught.value.field is field


@pytest.mark.parametrize(("field", "raw", "country", "rule"), REJECTED)
def test_error_messages_never_contain_the_value(
    field: FieldType, raw: str, country: str, rule: str
) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate(field, raw, country, today=TODAY)
    message = str(caught.value)
    for form in {raw, raw.strip(), normalise(field, raw, country)} - {""}:
        assert form not in message
        assert form.casefold() not in message.casefold()


def test_card_error_message_reads_as_the_user_sees_it() -> None:
    with pytest.raises(InvalidValue, match=r"^card number fails the Luhn check$"):
        validate(F.CARD_NUMBER, "4111111111111112")


def test_invalid_value_is_an_input_error_and_survives_pickling() -> None:
    with pytest.raises(InvalidValue) as caught:
        validate(F.NINO, "BG123456A")
    error = caught.value
    assert isinstance(error, InputError)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert isinstance(copy, InvalidValue)
    assert (copy.field, copy.rule, str(copy)) == (error.field, error.rule, str(error))


def test_unknown_country_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InputError, match="known: GB, IN, US"):
        validate(F.PASSPORT_NUMBER, "123456789", "FR")


def test_date_of_birth_age_is_counted_from_the_given_day() -> None:
    assert validate(F.DATE_OF_BIRTH, "2010-06-01", today=date(2026, 6, 1)) == "2010-06-01"
    with pytest.raises(InvalidValue, match="under 16"):
        validate(F.DATE_OF_BIRTH, "2010-06-02", today=date(2026, 6, 1))


def test_field_countries_leave_out_the_fields_a_country_lacks() -> None:
    assert set(FIELD_COUNTRIES) == {"GB", "US", "IN"}
    assert set(FieldType) - set(FIELD_COUNTRIES["GB"]) == {F.PAN}
    assert set(FieldType) - set(FIELD_COUNTRIES["US"]) == {F.SORT_CODE, F.IBAN, F.NINO, F.PAN}
    assert set(FieldType) - set(FIELD_COUNTRIES["IN"]) == {F.SORT_CODE, F.IBAN, F.NINO}


def test_luhn_check_digit_completes_a_known_card_number() -> None:
    assert luhn_check_digit("411111111111111") == "1"
    assert luhn_check_digit("37828224631000") == "5"
    with pytest.raises(ValueError, match="digits"):
        luhn_check_digit("4111 1111")


# --- properties --------------------------------------------------------------

COUNTRIES = st.sampled_from(sorted(FIELD_COUNTRIES))


@given(field=st.sampled_from(FieldType), text=st.text(), country=COUNTRIES)
def test_normalise_is_idempotent_on_any_text(field: FieldType, text: str, country: str) -> None:
    once = normalise(field, text, country)
    assert normalise(field, once, country) == once


def _digits(size: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=size, max_size=size)


@st.composite
def _card_numbers(draw: st.DrawFn) -> str:
    prefix, length = draw(
        st.sampled_from([("4", 16), ("51", 16), ("2720", 16), ("37", 15), ("6011", 16), ("81", 16)])
    )
    body = prefix + draw(_digits(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


@st.composite
def _gb_ibans(draw: st.DrawFn) -> str:
    bank = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=4))
    bban = bank + draw(_digits(14))
    return f"GB{stdnum_iban.calc_check_digits('GB00' + bban)}{bban}"


@st.composite
def _ninos(draw: st.DrawFn) -> str:
    first = draw(st.sampled_from("ABCEGHJKLMNOPRSTWXYZ"))
    second = draw(st.sampled_from("ABCEGHJKLMNPRSTWXYZ"))
    if first + second in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
        second = "A"
    return first + second + draw(_digits(6)) + draw(st.sampled_from("ABCD"))


def _dated(born: date) -> str:
    return born.strftime("%d/%m/%Y")


VALID_VALUES = st.one_of(
    st.tuples(st.just(F.CARD_NUMBER), _card_numbers()),
    st.tuples(st.just(F.IBAN), _gb_ibans()),
    st.tuples(st.just(F.NINO), _ninos()),
    st.tuples(st.just(F.SORT_CODE), _digits(6)),
    st.tuples(st.just(F.ACCOUNT_NUMBER), _digits(8)),
    st.tuples(st.just(F.PASSPORT_NUMBER), _digits(9)),
    st.tuples(
        st.just(F.PAN),
        st.builds(
            lambda head, serial, tail: f"{head}P{head[0]}{serial:04d}{tail}",
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3),
            st.integers(1, 9999),
            st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
        ),
    ),
    st.tuples(
        st.just(F.PHONE),
        st.builds(lambda d: "07" + d[0].replace("0", "7") + d[1:], _digits(9)),
    ),
    st.tuples(
        st.just(F.DATE_OF_BIRTH),
        st.dates(date(1910, 1, 1), date(2008, 1, 1)).map(_dated),
    ),
    st.tuples(
        st.just(F.BALANCE),
        st.decimals(-(10**9), 10**9, places=2, allow_nan=False).map(str),
    ),
    st.tuples(
        st.just(F.EMAIL),
        st.from_regex(
            r"[a-z]{1,10}(\.[a-z0-9]{1,8})?@[a-z]{2,10}\.(com|co\.uk|in)", fullmatch=True
        ),
    ),
)


SPACED_FIELDS = {F.CARD_NUMBER, F.IBAN, F.NINO, F.SORT_CODE, F.ACCOUNT_NUMBER, F.PAN, F.PHONE}


def _decorated(field: FieldType, value: str, style: int) -> str:
    """Write a value the way a customer file might: lower-case, padded or spaced."""
    if style == 1:
        return value.lower()
    if style == 2:
        return f"  {value} "
    if style == 3 and field in SPACED_FIELDS:
        return f"{value[:2]} {value[2:4]}-{value[4:]}"
    return value


@given(pair=VALID_VALUES, style=st.integers(0, 3))
def test_validate_of_a_normalised_valid_value_returns_it_unchanged(
    pair: tuple[FieldType, str], style: int
) -> None:
    field, value = pair
    written = _decorated(field, value, style)
    canonical = normalise(field, written)
    assert validate(field, written, today=TODAY) == canonical
    assert validate(field, canonical, today=TODAY) == canonical


@given(field=st.sampled_from(FieldType), text=st.text(), country=COUNTRIES)
def test_validate_raises_only_invalid_value_on_any_text(
    field: FieldType, text: str, country: str
) -> None:
    try:
        canonical = validate(field, text, country, today=TODAY)
    except InvalidValue as error:
        assert error.field is field
    else:
        assert canonical == normalise(field, text, country)


@given(
    scheme=st.sampled_from(["4", "51", "2221", "34", "6011", "62", "3528", "508", "6759", "99"]),
    rest=st.text(alphabet="0123456789", min_size=9, max_size=18),
)
def test_card_checks_agree_with_stdnum_luhn_and_the_scheme_table(scheme: str, rest: str) -> None:
    # The card check has its own Luhn and a memo of scheme prefixes: hold both to the
    # library's Luhn and to the ISO/IEC 7812 ranges on numbers of every length.
    number = (scheme + rest)[:19]
    lengths = [
        (low, high)
        for start, end, low, high in _CARD_TABLE
        if start <= int(number[: len(str(start))]) <= end
    ]
    expected = (
        13 <= len(number) <= 19
        and any(low <= len(number) <= high for low, high in lengths)
        and stdnum_luhn.is_valid(number)
    )
    try:
        validate(F.CARD_NUMBER, number, "GB")
        accepted = True
    except InvalidValue:
        accepted = False
    assert accepted == expected
