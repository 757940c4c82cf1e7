"""The catalogue of customer field types and their sensitivity.

Every capability speaks of customer data in these terms: the guard masks and
encrypts by field type, contracts list the field types a purpose needs, the
simulator generates them, trace recognises them in leaked dumps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Sensitivity(enum.IntEnum):
    """How much harm a field does in the wrong hands; higher is worse."""

    LOW = 1  # harmless alone: a town, a free-text note with no identifiers
    PERSONAL = 2  # identifies or contacts a person: name, phone, e-mail
    CONFIDENTIAL = 3  # enables social engineering: date of birth, balance
    RESTRICTED = 4  # enables fraud or identity theft: bank, card, ID numbers


class FieldType(enum.StrEnum):
    """A kind of customer value; the value is the column name used everywhere."""

    NAME = "name"
    DATE_OF_BIRTH = "date_of_birth"
    ADDRESS = "address"
    PHONE = "phone"
    EMAIL = "email"
    SORT_CODE = "sort_code"
    ACCOUNT_NUMBER = "account_number"
    IBAN = "iban"
    CARD_NUMBER = "card_number"
    PASSPORT_NUMBER = "passport_number"
    DRIVING_LICENCE = "driving_licence"
    NINO = "nino"
    PAN = "pan"
    BALANCE = "balance"
    NOTES = "notes"


@dataclass(frozen=True)
class FieldSpec:
    """What bpoguard knows about one field type."""

    type: FieldType
    label: str
    sensitivity: Sensitivity
    category: str  # identity, contact, financial, payment card, government id, free text


_SPECS = (
    FieldSpec(FieldType.NAME, "Full name", Sensitivity.PERSONAL, "identity"),
    FieldSpec(FieldType.DATE_OF_BIRTH, "Date of birth", Sensitivity.CONFIDENTIAL, "identity"),
    FieldSpec(FieldType.ADDRESS, "Postal address", Sensitivity.PERSONAL, "contact"),
    FieldSpec(FieldType.PHONE, "Phone number", Sensitivity.PERSONAL, "contact"),
    FieldSpec(FieldType.EMAIL, "E-mail address", Sensitivity.PERSONAL, "contact"),
    FieldSpec(FieldType.SORT_CODE, "UK sort code", Sensitivity.RESTRICTED, "financial"),
    FieldSpec(FieldType.ACCOUNT_NUMBER, "Bank account number", Sensitivity.RESTRICTED, "financial"),
    FieldSpec(FieldType.IBAN, "IBAN", Sensitivity.RESTRICTED, "financial"),
    FieldSpec(FieldType.CARD_NUMBER, "Payment card number", Sensitivity.RESTRICTED, "payment card"),
    FieldSpec(
        FieldType.PASSPORT_NUMBER, "Passport number", Sensitivity.RESTRICTED, "government id"
    ),
    FieldSpec(
        FieldType.DRIVING_LICENCE, "Driving licence number", Sensitivity.RESTRICTED, "government id"
    ),
    FieldSpec(
        FieldType.NINO, "UK National Insurance number", Sensitivity.RESTRICTED, "government id"
    ),
    FieldSpec(FieldType.PAN, "Indian PAN", Sensitivity.RESTRICTED, "government id"),
    FieldSpec(FieldType.BALANCE, "Account balance", Sensitivity.CONFIDENTIAL, "financial"),
    FieldSpec(FieldType.NOTES, "Agent notes", Sensitivity.LOW, "free text"),
)

CATALOGUE: dict[FieldType, FieldSpec] = {spec.type: spec for spec in _SPECS}


def spec(field: FieldType | str) -> FieldSpec:
    """Return the catalogue entry of a field type, given by enum or name."""
    return CATALOGUE[FieldType(field)]


def parse_fields(names: str | list[str]) -> tuple[FieldType, ...]:
    """Parse field names ("card_number,iban" or a list); raise ValueError naming the bad one."""
    items = names.split(",") if isinstance(names, str) else names
    parsed = []
    for raw in items:
        name = raw.strip()
        if not name:
            continue
        try:
            parsed.append(FieldType(name))
        except ValueError:
            known = ", ".join(f.value for f in FieldType)
            raise ValueError(f"unknown field type {name!r}; known: {known}") from None
    return tuple(parsed)
