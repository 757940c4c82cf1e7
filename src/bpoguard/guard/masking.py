"""How each field type is shown to an agent before (or without) a reveal.

One pure function per field type. Each shows at most what its rule allows
and no more: the rule is a ceiling, so a value too short or too odd to mask
safely is hidden whole rather than shown in part. Masks have a fixed shape,
so they do not give away a value's length either.

    card_number       last four digits (PCI DSS 3.4.1)       •••• •••• •••• 2083
    account_number    last three digits                      •••••722
    iban              country code and last three            GB•••••722
    sort_code         last two digits                        ••-••-07
    date_of_birth     day and month; the year hidden         06 Sep ••••
    passport_number   last three characters                  •••••950
    driving_licence   last three characters                  •••••9GH
    nino              last three characters                  •••••12C
    pan               last three characters                  •••••61K
    name              in full (the agent is on the call)     Sandra Hughes
    address           town and postcode district             Brighton BN19; Phoenix, AZ 850
    phone             last three digits                      •••••••207
    email             first character and the domain         s•••@btinternet.com
    balance           nothing                                ••••
    notes             in full, runs of 6+ digits hidden      Card •••• cancelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from types import MappingProxyType
from typing import Final

from bpoguard.fields import FieldType
from bpoguard.validators import normalise

__all__ = ["BULLET", "mask", "mask_slice"]

BULLET: Final = "•"
_HIDDEN: Final = BULLET * 4
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)

_NON_DIGITS = re.compile(r"[^0-9]")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
# Postal codes at the end of an address's last part (see validators and the simulator):
# UK "BN19 8ST" (outward code = the district), US "AZ 85096" (state, ZIP), India
# "Jharkhand 834086" (state, PIN). The district is the outward code, ZIP3, or PIN3.
_UK_POSTCODE = re.compile(r"([A-Za-z]{1,2}[0-9][A-Za-z0-9]?) ?[0-9][A-Za-z]{2}")
_US_ZIP = re.compile(r"([A-Za-z]{2}) ([0-9]{3})[0-9]{2}(?:-[0-9]{4})?")
_IN_PIN = re.compile(r"([^\W\d_][^\d,]*?) ?([0-9]{3}) ?[0-9]{3}")
# Digit runs of six or more (spaces and dashes allowed inside): any card, account
# or ID number an agent may have typed into a note.
_LONG_NUMBER = re.compile(r"[0-9](?:[ \-]?[0-9]){5,}")


def _tail(value: str, keep: int) -> str:
    """The last ``keep`` characters, but only if that is at most half the value; else ''."""
    return value[-keep:] if len(value) >= 2 * keep else ""


def _digit_tail(value: str, keep: int) -> str:
    return _tail(_NON_DIGITS.sub("", value), keep)


def _card(value: str) -> str:
    last = _digit_tail(value, 4)
    return f"•••• •••• •••• {last}" if last else _HIDDEN


def _account_number(value: str) -> str:
    return BULLET * 5 + _digit_tail(value, 3)


def _iban(value: str) -> str:
    compact = _NON_ALNUM.sub("", value).upper()
    country = compact[:2] if compact[:2].isalpha() else ""
    return country + BULLET * 5 + _tail(compact, 3) if len(compact) >= 12 else _HIDDEN


def _sort_code(value: str) -> str:
    return "••-••-" + (_digit_tail(value, 2) or "••")


def _identifier(value: str) -> str:
    return BULLET * 5 + _tail(_NON_ALNUM.sub("", value).upper(), 3)


def _date_of_birth(value: str) -> str:
    try:
        born = date.fromisoformat(normalise(FieldType.DATE_OF_BIRTH, value))
    except ValueError:
        return "•• ••• ••••"
    return f"{born.day:02d} {_MONTHS[born.month - 1]} ••••"


def _name(value: str) -> str:
    return " ".join(value.split())


def _district(last: str) -> str | None:
    """The postcode district of an address's last part, after the town ("Leeds LS1", "Austin, TX 787")."""
    if match := _UK_POSTCODE.fullmatch(last):
        return f" {match.group(1).upper()}"
    if match := _US_ZIP.fullmatch(last):
        return f", {match.group(1).upper()} {match.group(2)}"
    if match := _IN_PIN.fullmatch(last):
        return f", {match.group(1)} {match.group(2)}"
    return None


def _address(value: str) -> str:
    parts = [part.strip() for part in value.split(",")]
    if len(parts) < 3:  # door, town, postcode at the least; anything else is not understood
        return _HIDDEN
    district = _district(parts[-1])
    town = parts[-2]
    if district is None or any(ch.isdigit() for ch in town):
        return _HIDDEN
    return town + district


def _phone(value: str) -> str:
    return BULLET * 7 + (_digit_tail(value, 3) or "•••")


def _email(value: str) -> str:
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        return _HIDDEN
    return f"{local[0]}•••@{domain}"


def _balance(value: str) -> str:
    return _HIDDEN


def _notes(value: str) -> str:
    return _LONG_NUMBER.sub(_HIDDEN, " ".join(value.split()))


_RULES: Final[Mapping[FieldType, Callable[[str], str]]] = MappingProxyType(
    {
        FieldType.NAME: _name,
        FieldType.DATE_OF_BIRTH: _date_of_birth,
        FieldType.ADDRESS: _address,
        FieldType.PHONE: _phone,
        FieldType.EMAIL: _email,
        FieldType.SORT_CODE: _sort_code,
        FieldType.ACCOUNT_NUMBER: _account_number,
        FieldType.IBAN: _iban,
        FieldType.CARD_NUMBER: _card,
        FieldType.PASSPORT_NUMBER: _identifier,
        FieldType.DRIVING_LICENCE: _identifier,
        FieldType.NINO: _identifier,
        FieldType.PAN: _identifier,
        FieldType.BALANCE: _balance,
        FieldType.NOTES: _notes,
    }
)


def mask(field: FieldType, value: str) -> str:
    """Return what an agent may see of a value before it is revealed (module table)."""
    rule = _RULES.get(field)  # a member, or its name: a StrEnum hashes as its value
    if rule is None:
        rule = _RULES[FieldType(field)]  # ValueError naming an unknown field
    return rule(value)


def mask_slice(fields: Iterable[FieldType], values: Mapping[str, str]) -> dict[FieldType, str]:
    """Mask each of ``fields`` that ``values`` holds (keyed by field name); absent fields are left out."""
    # The guard passes members already; FieldType() is for names (and names an unknown one).
    return {
        f if isinstance(f, FieldType) else FieldType(f): mask(f, values[f])
        for f in fields
        if f in values
    }
