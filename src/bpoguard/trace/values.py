"""Finding customer values in a dump's cells, with the validators the guard itself uses.

A cell may hold one value ("4111 1111 1111 1111", "GB62barc20097733149208") or
text around several ("card 4111-1111-1111-1111 exp 12/27, sort 20-00-00").
Every candidate is normalised and checked with :func:`bpoguard.validators.validate`
for each field type and client country its shape allows; only values that pass
(Luhn, mod-97, stdnum, the published national formats) are looked up. Masked
and partial values ("**** 1234", "ending 1234") are kept apart as *partials*:
weak evidence that can narrow a match, never a match alone.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from bpoguard.fields import FieldType as F
from bpoguard.validators import valid_forms

COUNTRIES = ("GB", "US", "IN")
# Field types whose validation and normal form ignore the country (a card number is
# valid everywhere or nowhere): validated once, not once a country. A test holds the
# validators to it.
SAME_IN_EVERY_COUNTRY: frozenset[F] = frozenset({F.CARD_NUMBER, F.EMAIL, F.IBAN, F.NINO, F.PAN})
_TODAY = date(2026, 1, 1)  # only a date of birth's age check reads it; we look for no dates

# Column names that say what a column holds, in the words dumps use.
_HINTS: tuple[tuple[re.Pattern[str], F], ...] = tuple(
    (re.compile(pattern, re.I), field)
    for pattern, field in (
        (r"e-?mail|mail", F.EMAIL),
        (r"phone|mobile|\bmob\b|\btel\b|cell|contact", F.PHONE),
        (r"card|\bcc\b|\bpan\b.*card|ccnum", F.CARD_NUMBER),
        (r"iban", F.IBAN),
        (r"sort", F.SORT_CODE),
        (r"acc(oun)?t|\ba/?c\b|acct", F.ACCOUNT_NUMBER),
        (r"passport|\bpp\b", F.PASSPORT_NUMBER),
        (r"licen[cs]e|\bdl\b|dvla", F.DRIVING_LICENCE),
        (r"\bni\b|nino|insurance", F.NINO),
        (r"\bpan\b|pan.?no|income tax", F.PAN),
        (r"name", F.NAME),
        (r"\bdob\b|birth", F.DATE_OF_BIRTH),
        (r"addr|street|postcode", F.ADDRESS),
        (r"balance|\bbal\b", F.BALANCE),
    )
)

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Runs of digits with the separators people type into numbers (spaces, dashes, dots, brackets).
_NUMBER_RUN = re.compile(r"(?<![A-Za-z0-9])\+?\(?\d[\d \-.()/]{4,40}\d(?![A-Za-z0-9])")
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,3})?\b")
_NINO = re.compile(r"\b[A-Za-z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-Da-d]\b")
# Words of 7 to 24 letters and digits holding both (the look-aheads cannot leave the
# word: they stop at its first character of another kind).
_MIXED_TOKEN = re.compile(r"\b(?=[A-Za-z]*[0-9])(?=[0-9]*[A-Za-z])[A-Za-z0-9]{7,24}\b")
# Masked values: a run of mask characters, then the digits left visible.
# Possessive quantifiers (Python 3.11): a long run of x's must not be re-split
# between the groups, which backtracks without end on "xxxx...x".
_MASKED = re.compile(r"(?:[*xX•#]{2,}+[ \-]?+){1,5}+([0-9]{2,4})\b")
_ENDING = re.compile(
    r"(?:ending(?: in)?|ends? (?:in|with)|last ?(?:4|four|digits))\W{0,3}(\d{4})\b", re.I
)
_LAST4_HEADER = re.compile(r"last.?4|last.?four|ending|suffix", re.I)

# The field types an exact value can be found by (the vault's blind indexes).
STRONG = frozenset(
    {F.PHONE, F.EMAIL, F.ACCOUNT_NUMBER, F.CARD_NUMBER, F.IBAN, F.PASSPORT_NUMBER,
     F.DRIVING_LICENCE, F.NINO, F.PAN}
)  # fmt: skip


# The order in which a record's values are asked of the vault: the rarest, most
# specific field types first (once one matches, the record's other values are asked
# of that client alone). :func:`recognise` returns the values in it, in the worker
# where there is one, so that the matcher need not sort each record twice.
STRENGTH: dict[F, int] = {
    field: rank
    for rank, field in enumerate(
        (F.CARD_NUMBER, F.IBAN, F.NINO, F.PAN, F.PASSPORT_NUMBER, F.DRIVING_LICENCE,
         F.EMAIL, F.PHONE, F.ACCOUNT_NUMBER)
    )
}  # fmt: skip
_WEAKEST = len(STRENGTH)


# Found and Partial are named tuples, not frozen dataclasses: immutable all the same,
# and built in a third of the time (a worker's tens of thousands are rebuilt here).
class Found(NamedTuple):
    """A valid value of one field type, in canonical form, and the countries whose format it fits."""

    field: F
    canonical: str
    countries: tuple[str, ...]
    column: str | None


class Partial(NamedTuple):
    """Masked or partial value: the visible trailing digits of a field (weak evidence)."""

    field: F
    suffix: str
    column: str | None


@dataclass(slots=True)
class Sighting:
    """Everything recognised in one record: full values, partials, field types seen."""

    found: list[Found]  # strongest first (:data:`STRENGTH`), else in the order found
    partials: list[Partial]
    fields: set[F]  # field types present as partials or named by a column (matches add theirs)


def hint(column: str | None) -> F | None:
    """The field type a column name suggests, if any."""
    if not column:
        return None
    # A dump repeats its few column names on every record: remember the answer
    # (bounded, as a JSON dump's keys need not be few).
    if column in _HINT_MEMO:
        return _HINT_MEMO[column]
    found = next((field for pattern, field in _HINTS if pattern.search(column)), None)
    if len(_HINT_MEMO) < _HINT_MEMO_LIMIT:
        _HINT_MEMO[column] = found
    return found


_HINT_MEMO: dict[str, F | None] = {}
_HINT_MEMO_LIMIT = 4_096


def recognise(cells: Iterable[tuple[str | None, str]]) -> Sighting:
    """Recognise the values in a record's cells."""
    sighting = Sighting([], [], set())
    seen: set[tuple[F, str]] = set()
    for column, text in cells:
        named = hint(column)
        before = len(sighting.found) + len(sighting.partials)
        for item in _values(text, named, column):
            if isinstance(item, Found):
                if (item.field, item.canonical) in seen:
                    continue
                seen.add((item.field, item.canonical))
                sighting.found.append(item)
            else:
                sighting.partials.append(item)
                sighting.fields.add(item.field)
        unmatched = len(sighting.found) + len(sighting.partials) == before
        if unmatched and named in (F.NAME, F.DATE_OF_BIRTH, F.ADDRESS, F.BALANCE, F.SORT_CODE):
            # A name, a date of birth, an address: present, even if not matchable.
            sighting.fields.add(named)
    if len(sighting.found) > 1:
        sighting.found.sort(key=_strength)  # stable: equals keep the order they were found in
    return sighting


def _strength(found: Found) -> int:
    return STRENGTH.get(found.field, _WEAKEST)


def _values(text: str, named: F | None, column: str | None) -> list[Found | Partial]:
    if not _may_hold_a_value(text):
        return []
    found: list[Found | Partial] = []
    partial, rest = _partial(text, named, column)
    if partial is not None:
        found.append(partial)
        if not rest.strip():
            return found
    whole = _classify(rest, named, column)
    found.extend(whole if whole else _scan(rest, named, column))
    return found


def _may_hold_a_value(text: str) -> bool:
    """Whether any pattern below could find something: each wants a digit or an "@".

    Most cells of a dump are names, towns and dates of other kinds: this one cheap
    test spares them the dozen searches and validators the rest of a cell goes through.
    """
    if "@" in text:
        return True
    if text.isascii():
        # Ten substring scans in C beat one regex on a long cell and cost ~1 µs on a short one.
        return any(map(text.__contains__, "0123456789"))
    # str.isdigit also counts other scripts' digits and superscripts, as the checks below do.
    return any(ch.isdigit() for ch in set(text))


def _partial(text: str, named: F | None, column: str | None) -> tuple[Partial | None, str]:
    """A masked or partial value in the text, and the text without it."""
    if match := _MASKED.search(text):
        masked = re.sub(r"[^*xX•#0-9]", "", match.group(0))
        field: F = F.CARD_NUMBER if len(masked) >= 12 or named is None else named
        if named in (F.PHONE, F.ACCOUNT_NUMBER, F.IBAN):
            field = named
        return Partial(field, match.group(1), column), _cut(text, match)
    if _may_say_ending(text) and (match := _ENDING.search(text)):
        return Partial(named or F.CARD_NUMBER, match.group(1), column), _cut(text, match)
    if column and len(text) <= 8 and _LAST4_HEADER.search(column):
        digits = re.sub(r"\D", "", text)
        if len(digits) == 4:
            return Partial(named if named in STRONG else F.CARD_NUMBER, digits, column), ""
    return None, text


def _may_say_ending(text: str) -> bool:
    # _ENDING wants "end" or "last"; a case-blind regex costs ten times these scans of
    # ASCII text (other scripts have letters that fold to ASCII ones: the regex decides).
    if not text.isascii():
        return True
    lower = text.lower()
    return "end" in lower or "last" in lower


def _cut(text: str, match: re.Match[str]) -> str:
    return text[: match.start()] + " " + text[match.end() :]


def _scan(text: str, named: F | None, column: str | None) -> list[Found]:
    """Values inside free text: e-mail addresses, IBANs, NINOs, numbers, ids."""
    found: list[Found] = []
    rest = text
    # Only words holding an "@": an e-mail pattern run over a long line without one
    # would retry from every position (quadratic time on a pasted page).
    for word in (w for w in text.split() if "@" in w) if "@" in text else ():
        for match in _EMAIL.finditer(word):
            found.extend(_classify(match.group(0), F.EMAIL, column))
            rest = rest.replace(match.group(0), " ")
    for pattern in (_IBAN, _NINO):
        for match in pattern.finditer(rest):
            hits = _classify(match.group(0), None, column)
            if hits:
                found.extend(hits)
                rest = rest.replace(match.group(0), " ")
    # Letters and digits together: a licence, passport or PAN, never a bare number.
    for match in _MIXED_TOKEN.finditer(rest):
        token = match.group(0)
        hits = _classify(token, None, column)
        found.extend(hits)
        rest = rest.replace(token, " ") if hits else rest
    for match in _NUMBER_RUN.finditer(rest):
        found.extend(_split_run(match.group(0), named, column))
    return found


def _split_run(run: str, named: F | None, column: str | None) -> list[Found]:
    """A run like "4111 1111 1111 1111 20-00-00": the longest valid pieces, left to right."""
    whole = _classify(run, named, column)
    if whole:
        return whole
    groups = run.split()
    found: list[Found] = []
    i = 0
    while i < len(groups):
        for j in range(min(len(groups), i + 6), i, -1):
            piece = " ".join(groups[i:j])
            # The whole run was classified above: a one-group run would be again.
            hits = _classify(piece, named, column) if piece != run else []
            if hits:
                found.extend(hits)
                i = j
                break
        else:
            i += 1
    return found


def _classify(text: str, named: F | None, column: str | None) -> list[Found]:
    """Every (field, countries) the text is a valid value of; a column's hint goes first."""
    value = text.strip().strip(".,;:")
    if not value or len(value) > 60:
        return []
    compact = _SEPARATORS.sub("", value)
    candidates = _candidates(value, compact)
    if named is not None and named in candidates:
        candidates = [named]
    found: list[Found] = []
    for field in candidates:
        # Dots and slashes inside numbers ("4960.9153..."): the validators strip only
        # spaces and dashes, so hand them the compact form; phones and e-mails as typed.
        text_in = value if field in (F.PHONE, F.EMAIL) or not compact.isalnum() else compact
        everywhere = field in SAME_IN_EVERY_COUNTRY or (
            field is F.PHONE and compact.startswith(_INTERNATIONAL)
        )
        if everywhere:
            # validate() once; valid_forms() would say the same for every country.
            for _, canonical in valid_forms(field, text_in, COUNTRIES[:1], today=_TODAY):
                found.append(Found(field, canonical, COUNTRIES, column))
            continue
        by_canonical: dict[str, list[str]] = {}
        for country, canonical in valid_forms(field, text_in, COUNTRIES, today=_TODAY):
            by_canonical.setdefault(canonical, []).append(country)
        for canonical, countries in by_canonical.items():
            found.append(Found(field, canonical, tuple(countries), column))
    return found


_SEPARATORS = re.compile(r"[\s\-.()/]")
# A phone number written with its country code ("+44 ...", "0044 ..."): read the same
# whatever the client's country, so validated once (a test holds the validators to it).
_INTERNATIONAL = ("+", "00")


def _candidates(value: str, compact: str) -> list[F]:
    """Field types the shape of a value allows (cheap, before any validator runs).

    ``compact`` is the value without the separators of :data:`_SEPARATORS`.
    """
    if "@" in value:
        return [F.EMAIL]
    if compact.startswith("+"):
        return [F.PHONE] if compact[1:].isdigit() else []
    if compact.isdigit():
        n = len(compact)
        kinds: list[F] = []
        if 13 <= n <= 19:
            kinds.append(F.CARD_NUMBER)
        if 10 <= n <= 13 or compact.startswith("00"):
            kinds.append(F.PHONE)
        if 8 <= n <= 18:
            kinds.append(F.ACCOUNT_NUMBER)
        if n == 9:
            kinds.append(F.PASSPORT_NUMBER)
        if 7 <= n <= 12:
            kinds.append(F.DRIVING_LICENCE)
        return kinds
    if not compact.isalnum() or not any(ch.isdigit() for ch in compact):
        return []
    upper = compact.upper()
    kinds = []
    if len(upper) >= 15 and upper[:2].isalpha() and upper[2:4].isdigit():
        kinds.append(F.IBAN)
    if len(upper) == 9:
        kinds.extend([F.NINO, F.PASSPORT_NUMBER])
    if len(upper) == 10:
        kinds.append(F.PAN)
    if len(upper) == 8:
        kinds.append(F.PASSPORT_NUMBER)
    if len(upper) in (8, 9, 10, 11, 12, 13, 15, 16):
        kinds.append(F.DRIVING_LICENCE)
    return kinds


_FIELDS = tuple(F)
_FIELD_NUMBER = {field: n for n, field in enumerate(_FIELDS)}


def pack(sightings: Sequence[Sighting]) -> bytes:
    """Sightings as bytes, for a worker process to hand back (:func:`unpack` reads them).

    Plain tuples through marshal: a third of what pickling the dataclasses costs to
    read back, and the parent reads them while it could be matching.
    """
    return marshal.dumps(
        [
            (
                [(_FIELD_NUMBER[f.field], f.canonical, f.countries, f.column) for f in s.found],
                [(_FIELD_NUMBER[p.field], p.suffix, p.column) for p in s.partials],
                [_FIELD_NUMBER[field] for field in s.fields],
            )
            for s in sightings
        ]
    )


def unpack(data: bytes) -> list[Sighting]:
    """The sightings :func:`pack` wrote."""
    fields, new = _FIELDS, tuple.__new__  # a named tuple's own __new__, less its Python frame
    return [
        Sighting(
            [
                new(Found, (fields[n], canonical, countries, column))
                for n, canonical, countries, column in found
            ],
            [new(Partial, (fields[n], suffix, column)) for n, suffix, column in partials],
            {fields[n] for n in present},
        )
        # Bytes from our own forked worker over a private pipe, never from a file or a user.
        for found, partials, present in marshal.loads(data)  # noqa: S302
    ]


__all__ = [
    "STRENGTH",
    "STRONG",
    "Found",
    "Partial",
    "Sighting",
    "hint",
    "pack",
    "recognise",
    "unpack",
]
