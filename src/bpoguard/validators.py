"""Validators and normalisers for every customer field type.

The guard's customer-file loader validates with these, the leak tracer
recognises values in dumps with them, and the simulator proves its output
against them. ``normalise`` gives the canonical form that exact matching uses
and never raises; ``validate`` normalises, then checks the format and any check
digit, raising :class:`InvalidValue`. No message ever carries the value.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from types import MappingProxyType
from typing import Final

from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from stdnum.exceptions import ValidationError
from stdnum.in_ import pan as stdnum_pan

from bpoguard.errors import InputError
from bpoguard.fields import FieldType

__all__ = [
    "FIELD_COUNTRIES",
    "InvalidValue",
    "luhn_check_digit",
    "normalise",
    "valid_forms",
    "validate",
]

_ALL_FIELDS = tuple(FieldType)


def _without(*absent: FieldType) -> tuple[FieldType, ...]:
    return tuple(field for field in _ALL_FIELDS if field not in absent)


FIELD_COUNTRIES: Final[Mapping[str, tuple[FieldType, ...]]] = MappingProxyType(
    {
        "GB": _without(FieldType.PAN),
        "US": _without(FieldType.SORT_CODE, FieldType.IBAN, FieldType.NINO, FieldType.PAN),
        "IN": _without(FieldType.SORT_CODE, FieldType.IBAN, FieldType.NINO),
    }
)
"""The field types a customer record holds, by client country (ISO 3166 alpha-2)."""

# What a message calls each field: the loader prefixes "customer file line 41: ".
_NOUNS: Final[Mapping[FieldType, str]] = MappingProxyType(
    {
        FieldType.NAME: "name",
        FieldType.DATE_OF_BIRTH: "date of birth",
        FieldType.ADDRESS: "address",
        FieldType.PHONE: "phone number",
        FieldType.EMAIL: "e-mail address",
        FieldType.SORT_CODE: "sort code",
        FieldType.ACCOUNT_NUMBER: "account number",
        FieldType.IBAN: "IBAN",
        FieldType.CARD_NUMBER: "card number",
        FieldType.PASSPORT_NUMBER: "passport number",
        FieldType.DRIVING_LICENCE: "driving licence number",
        FieldType.NINO: "National Insurance number",
        FieldType.PAN: "PAN",
        FieldType.BALANCE: "balance",
        FieldType.NOTES: "notes",
    }
)


class InvalidValue(InputError):
    """A value does not fit its field type; the message names the rule broken, never the value."""

    def __init__(self, field: FieldType, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{_NOUNS[field]} {rule}")

    def __reduce__(self) -> tuple[type[InvalidValue], tuple[FieldType, str]]:
        # Exceptions pickle as cls(*args); ours takes (field, rule), not the message.
        return (InvalidValue, (self.field, self.rule))


# --- normalising -----------------------------------------------------------

_SEPARATORS = re.compile(r"[\s\-]+")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]+")
# "+44 (0)20 7946 0018": the bracketed trunk zero is dropped when dialling from abroad.
_PHONE_TRUNK_ZERO = re.compile(r"^(\+|00)([0-9]{1,3})\s*\(0\)")
_DIGITS = re.compile(r"[0-9]+")
_DAY_FIRST = re.compile(r"([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4})")
_YEAR_FIRST = re.compile(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})")
_BALANCE = re.compile(r"(-?)([0-9]+|[0-9]{1,3}(?:,[0-9]{2,3})+)(?:\.([0-9]{1,2}))?")
_COMMA = re.compile(r"\s*,\s*")


def _collapse(value: str) -> str:
    return " ".join(value.split())


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value)


def _compact_upper(value: str) -> str:
    return _compact(value).upper()


def _name(value: str) -> str:
    return _collapse(value.casefold())


def _address(value: str) -> str:
    return _COMMA.sub(", ", _name(value)).strip()


def _email(value: str) -> str:
    return value.strip().lower()


def _date(value: str) -> str:
    text = value.strip()
    if match := _DAY_FIRST.fullmatch(text):
        day, month, year = match.groups()
    elif match := _YEAR_FIRST.fullmatch(text):
        year, month, day = match.groups()
    else:
        return text
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _balance(value: str) -> str:
    text = value.strip()
    match = _BALANCE.fullmatch(text)
    if match is None:
        return text
    sign, units, cents = match.groups()
    units = units.replace(",", "").lstrip("0") or "0"
    cents = (cents or "").ljust(2, "0")
    if units == "0" and cents == "00":
        sign = ""
    return f"{sign}{units}.{cents}"


def _national_to_e164(digits: str, country: str) -> str:
    # National dialling forms: UK and India drop a trunk "0"; NANP numbers are
    # ten digits, or eleven with the country code "1" in front.
    if country in ("GB", "IN") and digits.startswith("0"):
        return ("+44" if country == "GB" else "+91") + digits[1:]
    if country == "US" and len(digits) == 10:
        return "+1" + digits
    if country == "US" and len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    if country == "IN" and len(digits) == 10:
        return "+91" + digits
    return digits


def _phone(value: str, country: str) -> str:
    text = _PHONE_TRUNK_ZERO.sub(r"\1\2", value.strip())
    text = _PHONE_SEPARATORS.sub("", text)
    if text.startswith("00"):
        return "+" + text[2:]
    if _DIGITS.fullmatch(text):
        return _national_to_e164(text, country)
    return text


_NORMALISERS: Final[Mapping[FieldType, Callable[[str], str]]] = MappingProxyType(
    {
        FieldType.NAME: _name,
        FieldType.DATE_OF_BIRTH: _date,
        FieldType.ADDRESS: _address,
        FieldType.EMAIL: _email,
        FieldType.SORT_CODE: _compact,
        FieldType.ACCOUNT_NUMBER: _compact,
        FieldType.IBAN: _compact_upper,
        FieldType.CARD_NUMBER: _compact,
        FieldType.PASSPORT_NUMBER: _compact_upper,
        FieldType.DRIVING_LICENCE: _compact_upper,
        FieldType.NINO: _compact_upper,
        FieldType.PAN: _compact_upper,
        FieldType.BALANCE: _balance,
        FieldType.NOTES: _collapse,
    }
)


def _country(country: str) -> str:
    code = country.upper()
    if code not in FIELD_COUNTRIES:
        known = ", ".join(sorted(FIELD_COUNTRIES))
        raise InputError(f"unknown client country {country!r}; known: {known}")
    return code


def _field(field: FieldType | str) -> FieldType:
    # FieldType(member) goes through EnumType.__call__: skip it for a member (the usual case).
    return field if type(field) is FieldType else FieldType(field)


def normalise(field: FieldType, value: str, country: str = "GB") -> str:
    """Return the canonical form of a value for exact matching; never raises on odd input.

    ``country`` says how to read national phone numbers (0 7700 900123 in GB).
    """
    field = _field(field)
    if field is FieldType.PHONE:
        return _phone(value, _country(country))
    return _NORMALISERS[field](value)


# --- checking --------------------------------------------------------------

_Check = Callable[[str, str, date], None]


def _require(ok: bool, field: FieldType, rule: str) -> None:
    if not ok:
        raise InvalidValue(field, rule)


def _check_text(field: FieldType, value: str, limit: int) -> None:
    _require(len(value) <= limit, field, f"is longer than {limit} characters")
    _require(value.isprintable(), field, "contains control characters")


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _check_name(value: str, country: str, today: date) -> None:
    _require(bool(value), FieldType.NAME, "is empty")
    _check_text(FieldType.NAME, value, 200)
    # Combining marks: Devanagari and other scripts write vowels with them.
    allowed = all(ch.isalpha() or ch in " -'’." or _is_mark(ch) for ch in value)
    _require(allowed, FieldType.NAME, "may hold only letters, spaces, hyphens, apostrophes, dots")
    _require(any(ch.isalpha() for ch in value), FieldType.NAME, "has no letters")


def _check_address(value: str, country: str, today: date) -> None:
    _require(bool(value), FieldType.ADDRESS, "is empty")
    _check_text(FieldType.ADDRESS, value, 300)
    _require(any(ch.isalpha() for ch in value), FieldType.ADDRESS, "has no letters")


def _check_notes(value: str, country: str, today: date) -> None:
    _check_text(FieldType.NOTES, value, 2000)


def _age(born: date, today: date) -> int:
    before_birthday = (today.month, today.day) < (born.month, born.day)
    return today.year - born.year - before_birthday


def _check_date_of_birth(value: str, country: str, today: date) -> None:
    field = FieldType.DATE_OF_BIRTH
    shaped = re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is not None
    _require(shaped, field, "is not in DD/MM/YYYY or YYYY-MM-DD form")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise InvalidValue(field, "is not a real calendar date") from None
    age = _age(born, today)
    _require(age >= 16, field, "gives an age under 16")
    _require(age <= 120, field, "gives an age over 120")


# E.164 (ITU-T): a country code and subscriber number, 15 digits at most.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# Ofcom numbering plan: +44 then 9 or 10 national digits, never a leading 0.
_UK_PHONE = re.compile(r"\+44[1-9][0-9]{8,9}")
# NANP: area code and exchange code both start 2-9.
_NANP_PHONE = re.compile(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}")
# India's numbering plan: +91 then ten digits.
_IN_PHONE = re.compile(r"\+91[1-9][0-9]{9}")
_PHONE_PLANS = (
    ("+44", _UK_PHONE, "UK"),
    ("+1", _NANP_PHONE, "North American"),
    ("+91", _IN_PHONE, "Indian"),
)


# The hot checks (those a dump's candidates go through by the thousand) are written as
# rules: the rule a canonical value breaks, or None. The check raises from it, and
# valid_forms() asks it without the cost of raising and catching a failure.
_Rule = Callable[[str, str], str | None]


def _raise_broken(field: FieldType, rule: str | None) -> None:
    if rule is not None:
        raise InvalidValue(field, rule)


def _phone_rule(value: str, country: str) -> str | None:
    if _E164.fullmatch(value) is None:
        return "is not a number in E.164 form"
    for prefix, plan, region in _PHONE_PLANS:
        if value.startswith(prefix):
            return None if plan.fullmatch(value) is not None else f"does not fit the {region} plan"
    return None


def _check_phone(value: str, country: str, today: date) -> None:
    _raise_broken(FieldType.PHONE, _phone_rule(value, country))


# RFC 5321 limits (64-octet local part, 254-octet path) and a dot-atom local part.
_EMAIL = re.compile(
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


def _check_email(value: str, country: str, today: date) -> None:
    field = FieldType.EMAIL
    _require(_EMAIL.fullmatch(value) is not None, field, "is not of the form name@domain.tld")
    _require(len(value) <= 254, field, "is longer than 254 characters")
    _require(len(value.split("@")[0]) <= 64, field, "has a local part longer than 64 characters")


def _digits_ok(value: str, low: int, high: int) -> bool:
    return _DIGITS.fullmatch(value) is not None and low <= len(value) <= high


def _check_digits(field: FieldType, value: str, low: int, high: int, rule: str) -> None:
    _require(_digits_ok(value, low, high), field, rule)


def _check_sort_code(value: str, country: str, today: date) -> None:
    _check_digits(FieldType.SORT_CODE, value, 6, 6, "must have 6 digits")


_ACCOUNT_LENGTHS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {"GB": (8, 8), "US": (8, 17), "IN": (9, 18)}
)


def _account_rule(value: str, country: str) -> str | None:
    low, high = _ACCOUNT_LENGTHS[country]
    if _digits_ok(value, low, high):
        return None
    span = f"{low}" if low == high else f"{low} to {high}"
    return f"must have {span} digits"


def _check_account_number(value: str, country: str, today: date) -> None:
    _raise_broken(FieldType.ACCOUNT_NUMBER, _account_rule(value, country))


def _iban_layout_ok(value: str) -> bool:
    # stdnum checks mod-97 before the country's layout; with the check digits
    # recomputed, what still fails is the length or layout.
    try:
        repaired = value[:2] + stdnum_iban.calc_check_digits(value) + value[4:]
        stdnum_iban.validate(repaired)
    except (ValidationError, ValueError):
        return False
    return True


def _check_iban(value: str, country: str, today: date) -> None:
    field = FieldType.IBAN
    _require(_iban_layout_ok(value), field, "has the wrong length or layout for its country")
    try:
        stdnum_iban.validate(value)
    except ValidationError:
        raise InvalidValue(field, "fails the ISO 7064 mod-97 check") from None


# ISO/IEC 7812 issuer ranges of the schemes our clients' customers hold:
# (first prefix, last prefix, shortest, longest number).
_CARD_RANGES: Final = (
    (4, 4, 13, 19),  # Visa
    (51, 55, 16, 16),  # Mastercard
    (2221, 2720, 16, 16),  # Mastercard 2-series
    (34, 34, 15, 15),  # American Express
    (37, 37, 15, 15),  # American Express
    (6011, 6011, 16, 19),  # Discover
    (644, 649, 16, 19),  # Discover
    (65, 65, 16, 19),  # Discover, RuPay
    (300, 305, 14, 19),  # Diners Club
    (36, 36, 14, 19),  # Diners Club
    (38, 39, 16, 19),  # Diners Club
    (3528, 3589, 16, 19),  # JCB
    (62, 62, 16, 19),  # UnionPay
    (60, 60, 16, 16),  # RuPay
    (81, 82, 16, 16),  # RuPay
    (508, 508, 16, 16),  # RuPay
    (50, 50, 13, 19),  # Maestro
    (56, 59, 13, 19),  # Maestro
    (6304, 6304, 13, 19),  # Maestro
    (6759, 6759, 13, 19),  # Maestro UK
    (6761, 6763, 13, 19),  # Maestro
)


@functools.lru_cache(maxsize=16_384)
def _card_lengths(prefix: str) -> tuple[tuple[int, int], ...]:
    """The schemes' length ranges for a number's first four digits (every prefix above fits in four).

    Memoised on those four digits: a dump holds thousands of numbers but few issuers.
    """
    head = int(prefix)
    return tuple(
        (shortest, longest)
        for first, last, shortest, longest, scale in _CARD_RANGES_SCALED
        if first <= head // scale <= last
    )


# Each range with the divisor that cuts a four-digit prefix to the range's width.
_CARD_RANGES_SCALED: Final = tuple(
    (first, last, shortest, longest, 10 ** (4 - len(str(first))))
    for first, last, shortest, longest in _CARD_RANGES
)


# Luhn (ISO/IEC 7812-1 annex B): from the right, every second digit is doubled and
# its digits summed. Hand-written because stdnum's general-alphabet version costs
# about ten times as much per number, and a dump holds one card candidate a record;
# a test holds it to stdnum on random numbers.
_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")


def _luhn_ok(digits: str) -> bool:
    kept = digits[-1::-2]
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(map(int, kept)) + sum(map(int, doubled))) % 10 == 0


def _card_rule(value: str, country: str) -> str | None:
    if not _digits_ok(value, 13, 19):
        return "must have 13 to 19 digits"
    lengths = _card_lengths(value[:4])
    if not lengths:
        return "does not start with a known card scheme prefix"
    if not any(low <= len(value) <= high for low, high in lengths):
        return "has the wrong length for its card scheme"
    return None if _luhn_ok(value) else "fails the Luhn check"


def _check_card_number(value: str, country: str, today: date) -> None:
    _raise_broken(FieldType.CARD_NUMBER, _card_rule(value, country))


# HMRC National Insurance Manual NIM39110: prefix letters D, F, I, Q, U, V never
# used, O never second, and BG, GB, KN, NK, NT, TN, ZZ never allocated; suffix A-D.
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]")
_NINO_UNUSED_PREFIXES: Final = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _check_nino(value: str, country: str, today: date) -> None:
    field = FieldType.NINO
    _require(_NINO.fullmatch(value) is not None, field, "is not two letters, six digits, A-D")
    _require(value[:2] not in _NINO_UNUSED_PREFIXES, field, "has a prefix HMRC never allocates")


def _check_pan(value: str, country: str, today: date) -> None:
    try:
        stdnum_pan.validate(value)
    except ValidationError:
        rule = "is not five letters (the fourth a holder type), four digits, a letter"
        raise InvalidValue(FieldType.PAN, rule) from None


# Passport numbers: HM Passport Office 9 digits; US State Department 9 digits,
# or a letter and 8 digits (Next Generation Passport, 2021); India a letter and 7 digits.
_PASSPORTS: Final[Mapping[str, tuple[re.Pattern[str], str]]] = MappingProxyType(
    {
        "GB": (re.compile(r"[0-9]{9}"), "must have 9 digits"),
        "US": (re.compile(r"[A-Z][0-9]{8}|[0-9]{9}"), "must be 9 digits or a letter and 8 digits"),
        "IN": (re.compile(r"[A-Z][0-9]{7}"), "must be a letter and 7 digits"),
    }
)


def _passport_rule(value: str, country: str) -> str | None:
    pattern, rule = _PASSPORTS[country]
    return None if pattern.fullmatch(value) is not None else rule


def _check_passport_number(value: str, country: str, today: date) -> None:
    _raise_broken(FieldType.PASSPORT_NUMBER, _passport_rule(value, country))


# DVLA licence number (16 characters): surname's first five letters padded with
# 9s; decade of birth; month of birth (+50 for women); day; year digit; two
# initials padded with 9; an arbitrary digit; two check characters.
_DVLA = re.compile(
    r"[A-Z9]{5}[0-9](?:0[1-9]|1[0-2]|5[1-9]|6[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"[0-9][A-Z][A-Z9][0-9][A-Z0-9]{2}"
)
_DVLA_SURNAME = re.compile(r"[A-Z]{1,5}9*")


# US states differ; most are an optional letter and 7 to 12 digits (California
# A1234567, Florida A123456789012, Texas 12345678).
_US_LICENCE = re.compile(r"[A-Z]?[0-9]{7,12}")
# Indian licence (Sarathi): state code, 2-digit RTO, year of issue, 7-digit serial.
_IN_STATE_CODE_LIST = (
    "AN AP AR AS BR CG CH DD DL DN GA GJ HP HR JH JK KA KL LA LD MH ML MN MP MZ NL OD OR "
    "PB PY RJ SK TG TN TR TS UA UK UP WB"
)
_IN_STATE_CODES: Final = frozenset(_IN_STATE_CODE_LIST.split())
_IN_LICENCE = re.compile(r"([A-Z]{2})[0-9]{2}(?:19|20)[0-9]{2}[0-9]{7}")


def _licence_rule(value: str, country: str) -> str | None:
    if country == "GB":
        ok = _DVLA.fullmatch(value) is not None and _DVLA_SURNAME.fullmatch(value[:5]) is not None
        return None if ok else "does not fit the DVLA format"
    if country == "US":
        ok = _US_LICENCE.fullmatch(value) is not None
        return None if ok else "is not a letter and 7 to 12 digits"
    match = _IN_LICENCE.fullmatch(value)
    ok = match is not None and match.group(1) in _IN_STATE_CODES
    return None if ok else "is not state code, RTO, year of issue and 7 digits"


def _check_driving_licence(value: str, country: str, today: date) -> None:
    _raise_broken(FieldType.DRIVING_LICENCE, _licence_rule(value, country))


def _check_balance(value: str, country: str, today: date) -> None:
    ok = re.fullmatch(r"-?[0-9]+\.[0-9]{2}", value) is not None
    _require(ok, FieldType.BALANCE, "is not a number with at most 2 decimal places")


_CHECKS: Final[Mapping[FieldType, _Check]] = MappingProxyType(
    {
        FieldType.NAME: _check_name,
        FieldType.DATE_OF_BIRTH: _check_date_of_birth,
        FieldType.ADDRESS: _check_address,
        FieldType.PHONE: _check_phone,
        FieldType.EMAIL: _check_email,
        FieldType.SORT_CODE: _check_sort_code,
        FieldType.ACCOUNT_NUMBER: _check_account_number,
        FieldType.IBAN: _check_iban,
        FieldType.CARD_NUMBER: _check_card_number,
        FieldType.PASSPORT_NUMBER: _check_passport_number,
        FieldType.DRIVING_LICENCE: _check_driving_licence,
        FieldType.NINO: _check_nino,
        FieldType.PAN: _check_pan,
        FieldType.BALANCE: _check_balance,
        FieldType.NOTES: _check_notes,
    }
)


def validate(
    field: FieldType, value: str, country: str = "GB", *, today: date | None = None
) -> str:
    """Return the normalised value, or raise InvalidValue naming the rule it breaks.

    ``country`` picks the national format (passport, licence, account number);
    ``today`` anchors the age check of a date of birth.
    """
    code = _country(country)
    field = _field(field)
    canonical = _phone(value, code) if field is FieldType.PHONE else _NORMALISERS[field](value)
    _CHECKS[field](canonical, code, today or date.today())
    return canonical


_RULES: Final[Mapping[FieldType, _Rule]] = MappingProxyType(
    {
        FieldType.PHONE: _phone_rule,
        FieldType.ACCOUNT_NUMBER: _account_rule,
        FieldType.CARD_NUMBER: _card_rule,
        FieldType.PASSPORT_NUMBER: _passport_rule,
        FieldType.DRIVING_LICENCE: _licence_rule,
    }
)


def valid_forms(
    field: FieldType, value: str, countries: Iterable[str], *, today: date | None = None
) -> list[tuple[str, str]]:
    """(country, normalised value) for each of ``countries`` where :func:`validate` passes.

    The same answers as calling :func:`validate` once a country and keeping those
    that do not raise (a test holds it to that), in the order given, for less: the
    value is normalised once where its normal form ignores the country, and the
    hot field types' rules are asked without raising. An unknown country raises
    as :func:`validate` does.
    """
    field = _field(field)
    rule = _RULES.get(field)
    canonical = None if field is FieldType.PHONE else _NORMALISERS[field](value)
    forms: list[tuple[str, str]] = []
    for country in countries:
        code = _country(country)
        form = _phone(value, code) if canonical is None else canonical
        if rule is not None:
            if rule(form, code) is None:
                forms.append((country, form))
            continue
        try:
            _CHECKS[field](form, code, today or date.today())
        except InputError:
            continue
        forms.append((country, form))
    return forms


def luhn_check_digit(partial: str) -> str:
    """Return the Luhn digit that completes ``partial`` (a string of digits) into a valid number."""
    if _DIGITS.fullmatch(partial) is None:
        raise ValueError("luhn_check_digit takes a non-empty string of digits")
    return str(stdnum_luhn.calc_check_digit(partial))
