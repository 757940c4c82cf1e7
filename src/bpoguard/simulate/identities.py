"""Seeded synthetic customers for UK, US and Indian clients.

Faker is slow per call (tens of microseconds), so it is asked only once per
country, for pools of first names, surnames and street names. Customers are
then drawn from those pools with numpy's PCG64, and every number (card, sort
code, IBAN, NINO, PAN, passport, licence) is built directly with its check
digits, so a million customers take seconds. The same seed gives the same
customers, byte for byte, in any process; each country has its own stream, so
the order in which countries are asked for does not matter.

The people are invented. Their e-mail addresses sit on real consumer domains
for realism, so never send mail to them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
from faker import Faker
from numpy.typing import NDArray

from bpoguard.fields import FieldType
from bpoguard.validators import FIELD_COUNTRIES

__all__ = ["AS_OF", "IdentityFactory"]

AS_OF: Final = date(2026, 1, 1)
"""The day ages are counted from: fixed, not today, so a seed gives the same people every day."""
_POOL_SIZE: Final = 2000
_COUNTRY_STREAMS: Final = {"GB": 0, "US": 1, "IN": 2}

_Ints = NDArray[np.int64]
_Columns = dict[FieldType, list[str]]


# --- reference tables --------------------------------------------------------

# Town, postcode area, highest district number (Royal Mail postcode areas).
_GB_TOWNS: Final = """
London,E,18;London,N,22;London,SE,28;London,SW,20;London,NW,11;London,W,14
Birmingham,B,48;Manchester,M,46;Leeds,LS,29;Glasgow,G,53;Sheffield,S,36
Bradford,BD,24;Liverpool,L,38;Edinburgh,EH,55;Bristol,BS,41;Cardiff,CF,24
Leicester,LE,19;Coventry,CV,23;Nottingham,NG,25;Newcastle upon Tyne,NE,13
Southampton,SO,19;Portsmouth,PO,16;Brighton,BN,45;Plymouth,PL,9
Reading,RG,31;Derby,DE,24;Stoke-on-Trent,ST,12;Wolverhampton,WV,16;Norwich,NR,35
Aberdeen,AB,25;Dundee,DD,5;Swansea,SA,9;York,YO,32;Oxford,OX,4;Cambridge,CB,5
Exeter,EX,6;Hull,HU,17;Preston,PR,5;Bolton,BL,7;Luton,LU,4;Milton Keynes,MK,19
Ipswich,IP,11;Peterborough,PE,7;Northampton,NN,7;Sunderland,SR,6;Swindon,SN,5
Bournemouth,BH,11;Blackpool,FY,4;Middlesbrough,TS,9;Huddersfield,HD,9
Warrington,WA,5;Gloucester,GL,4;Lincoln,LN,6;Chester,CH,4;Bath,BA,2
Canterbury,CT,2;Guildford,GU,5;Stockport,SK,8;Doncaster,DN,12;Telford,TF,7
Worcester,WR,5;Colchester,CO,7;Chelmsford,CM,3;Inverness,IV,3;Carlisle,CA,6
Lancaster,LA,4;Durham,DH,7;Wakefield,WF,4;Oldham,OL,9;Blackburn,BB,2
Salisbury,SP,2;Taunton,TA,3;Truro,TR,4;Hereford,HR,4;Shrewsbury,SY,5
Newport,NP,20;Croydon,CR,8;Watford,WD,25;Slough,SL,3;Southend-on-Sea,SS,3
"""

# City, state, ZIP prefix (USPS sectional centre), telephone area code (NANPA).
_US_TOWNS: Final = """
New York,NY,100,212;Los Angeles,CA,900,213;Chicago,IL,606,312;Houston,TX,770,713
Phoenix,AZ,850,602;Philadelphia,PA,191,215;San Antonio,TX,782,210
San Diego,CA,921,619;Dallas,TX,752,214;San Jose,CA,951,408;Austin,TX,787,512
Jacksonville,FL,322,904;Columbus,OH,432,614;Charlotte,NC,282,704
Indianapolis,IN,462,317;Seattle,WA,981,206;Denver,CO,802,303;Boston,MA,021,617
Nashville,TN,372,615;Detroit,MI,482,313;Portland,OR,972,503;Las Vegas,NV,891,702
Memphis,TN,381,901;Louisville,KY,402,502;Baltimore,MD,212,410
Milwaukee,WI,532,414;Albuquerque,NM,871,505;Tucson,AZ,857,520
Sacramento,CA,958,916;Atlanta,GA,303,404;Miami,FL,331,305;Minneapolis,MN,554,612
Cleveland,OH,441,216;Tampa,FL,336,813;Pittsburgh,PA,152,412;St. Louis,MO,631,314
Cincinnati,OH,452,513;Orlando,FL,328,407;Kansas City,MO,641,816;Omaha,NE,681,402
Raleigh,NC,276,919;Salt Lake City,UT,841,801;Richmond,VA,232,804
Buffalo,NY,142,716;Birmingham,AL,352,205;Hartford,CT,061,860
Providence,RI,029,401;New Orleans,LA,701,504;Oklahoma City,OK,731,405
Honolulu,HI,968,808;Boise,ID,837,208;Anchorage,AK,995,907;Des Moines,IA,503,515
Little Rock,AR,722,501;Charleston,SC,294,843;Newark,NJ,071,973
Spokane,WA,992,509;Madison,WI,537,608;Burlington,VT,054,802
"""

# City, state, PIN prefix (India Post), state code on licences (MoRTH).
_IN_TOWNS: Final = """
Mumbai,Maharashtra,400,MH;Pune,Maharashtra,411,MH;Nagpur,Maharashtra,440,MH
Nashik,Maharashtra,422,MH;New Delhi,Delhi,110,DL;Bengaluru,Karnataka,560,KA
Mysuru,Karnataka,570,KA;Mangaluru,Karnataka,575,KA;Chennai,Tamil Nadu,600,TN
Coimbatore,Tamil Nadu,641,TN;Madurai,Tamil Nadu,625,TN;Hyderabad,Telangana,500,TS
Kolkata,West Bengal,700,WB;Ahmedabad,Gujarat,380,GJ;Surat,Gujarat,395,GJ
Vadodara,Gujarat,390,GJ;Jaipur,Rajasthan,302,RJ;Jodhpur,Rajasthan,342,RJ
Lucknow,Uttar Pradesh,226,UP;Kanpur,Uttar Pradesh,208,UP;Noida,Uttar Pradesh,201,UP
Varanasi,Uttar Pradesh,221,UP;Agra,Uttar Pradesh,282,UP;Patna,Bihar,800,BR
Bhopal,Madhya Pradesh,462,MP;Indore,Madhya Pradesh,452,MP;Chandigarh,Chandigarh,160,CH
Kochi,Kerala,682,KL;Thiruvananthapuram,Kerala,695,KL
Visakhapatnam,Andhra Pradesh,530,AP;Vijayawada,Andhra Pradesh,520,AP
Bhubaneswar,Odisha,751,OD;Guwahati,Assam,781,AS;Ludhiana,Punjab,141,PB
Amritsar,Punjab,143,PB;Gurugram,Haryana,122,HR;Dehradun,Uttarakhand,248,UK
Ranchi,Jharkhand,834,JH;Raipur,Chhattisgarh,492,CG;Panaji,Goa,403,GA
Shimla,Himachal Pradesh,171,HP;Srinagar,Jammu and Kashmir,190,JK
"""


def _table(text: str) -> tuple[tuple[str, ...], ...]:
    rows = text.replace("\n", ";").split(";")
    return tuple(tuple(row.split(",")) for row in rows if row)


_TOWNS: Final = {"GB": _table(_GB_TOWNS), "US": _table(_US_TOWNS), "IN": _table(_IN_TOWNS)}


def _items(text: str) -> tuple[str, ...]:
    return tuple(text.split(";"))


# Street names: a surname and a common suffix, or one of the commonest real names.
_GB_STREET_SUFFIXES: Final = _items(
    "Road;Street;Lane;Avenue;Close;Drive;Way;Crescent;Gardens;Grove;Place;Terrace;Rise"
)
_GB_COMMON_STREETS: Final = _items(
    "High Street;Station Road;Church Lane;Main Street;Park Road;Victoria Road;Green Lane;"
    "Manor Road;Church Street;Park Avenue;Queens Road;The Avenue;London Road;Mill Lane;"
    "Kings Road;New Road;School Lane;York Road"
)
_US_STREET_SUFFIXES: Final = _items("St;Ave;Rd;Blvd;Dr;Ln;Ct;Way;Pl;Ter")
_US_COMMON_STREETS: Final = _items(
    "Main St;Oak St;Maple Ave;Park Ave;Washington St;Elm St;Cedar Ln;Pine St;Lake Dr;"
    "Hill Rd;2nd St;3rd St;1st Ave;Broadway;Sunset Blvd;Lincoln Ave"
)

# A 4-letter bank code (BIC prefix) and the sort codes it issues (Pay.UK directory).
_GB_BANKS: Final = (
    ("BARC", "20", 0.18),
    ("LOYD", "30", 0.14),
    ("LOYD", "77", 0.04),
    ("NWBK", "60", 0.13),
    ("HBUK", "40", 0.12),
    ("ABBY", "09", 0.09),
    ("NAIA", "07", 0.08),
    ("HLFX", "11", 0.08),
    ("RBOS", "83", 0.04),
    ("MONZ", "040004", 0.05),
    ("SRLG", "608371", 0.03),
    ("MYMB", "23", 0.02),
)
_GB_MOBILE_PREFIXES: Final = "12345789"  # Ofcom: 07[1-5,7-9]; 076 is pagers
# Geographic area codes and subscriber digits (Ofcom): ten national digits in all.
_GB_LANDLINES: Final = (
    ("20", 8),
    ("121", 7),
    ("161", 7),
    ("113", 7),
    ("131", 7),
    ("141", 7),
    ("117", 7),
    ("151", 7),
    ("114", 7),
    ("29", 8),
)
_POSTCODE_LETTERS: Final = "ABDEFGHJLNPQRSTUWXYZ"  # Royal Mail: never C I K M O V inward


_VISA = (4, 4, 16)
_MASTERCARD = (51, 55, 16)
_MASTERCARD_2 = (2221, 2720, 16)
_CARD_MIX: Final = {
    "GB": (
        (*_VISA, 0.62),
        (*_MASTERCARD, 0.22),
        (*_MASTERCARD_2, 0.10),
        (34, 34, 15, 0.02),
        (37, 37, 15, 0.04),
    ),
    "US": (
        (*_VISA, 0.52),
        (*_MASTERCARD, 0.18),
        (*_MASTERCARD_2, 0.07),
        (34, 34, 15, 0.04),
        (37, 37, 15, 0.08),
        (6011, 6011, 16, 0.07),
        (65, 65, 16, 0.04),
    ),
    "IN": (
        (*_VISA, 0.33),
        (*_MASTERCARD, 0.20),
        (*_MASTERCARD_2, 0.05),
        (60, 60, 16, 0.16),  # RuPay
        (6521, 6522, 16, 0.05),
        (81, 82, 16, 0.15),
        (508, 508, 16, 0.06),
    ),
}

_EMAIL_DOMAINS: Final = {
    "GB": (
        ("gmail.com", 0.34),
        ("hotmail.co.uk", 0.14),
        ("outlook.com", 0.12),
        ("yahoo.co.uk", 0.09),
        ("btinternet.com", 0.08),
        ("icloud.com", 0.08),
        ("sky.com", 0.05),
        ("live.co.uk", 0.04),
        ("virginmedia.com", 0.04),
        ("aol.com", 0.02),
    ),
    "US": (
        ("gmail.com", 0.42),
        ("yahoo.com", 0.16),
        ("outlook.com", 0.10),
        ("hotmail.com", 0.09),
        ("icloud.com", 0.10),
        ("aol.com", 0.05),
        ("comcast.net", 0.04),
        ("att.net", 0.04),
    ),
    "IN": (
        ("gmail.com", 0.62),
        ("yahoo.co.in", 0.14),
        ("rediffmail.com", 0.08),
        ("outlook.com", 0.07),
        ("hotmail.com", 0.05),
        ("yahoo.com", 0.04),
    ),
}

# Median balance and spread (log-normal), share overdrawn, median and largest overdraft.
_BALANCES: Final = {
    "GB": (1800.0, 1.4, 0.07, 250.0, 5000.0),
    "US": (2500.0, 1.5, 0.05, 150.0, 2500.0),
    "IN": (30000.0, 1.5, 0.0, 0.0, 0.0),
}
_MIDDLE_NAME_SHARE: Final = {"GB": 0.35, "US": 0.45, "IN": 0.10}
_LOCALES: Final = {"GB": "en_GB", "US": "en_US", "IN": "en_IN"}

_NOTES: Final = (
    "Customer called about a missing payment; explained the clearing times.",
    "Asked for a copy of last month's statement; sent by post.",
    "Reported a lost card; card cancelled and a replacement ordered.",
    "Queried an overdraft charge; fee explained, no refund due.",
    "Wants to update the correspondence address; told to use the app.",
    "Complained about hold times; apology given.",
    "Requested a payment holiday; passed to the collections team.",
    "Disputed a card transaction with an online retailer; chargeback raised.",
    "Called to check the balance after a salary payment.",
    "Travelling abroad next month; travel note added.",
    "Forgot online banking password; reset link issued.",
    "Asked about the interest rate on the savings account.",
    "Direct debit failed; customer will make the payment manually.",
    "Wanted to close the account; retention offer declined.",
    "Bereavement notification from a family member; passed to the specialist team.",
    "Suspected phishing text received; reminded never to share codes.",
    "Asked to increase the contactless limit; explained the rules.",
    "Letter returned undelivered; customer confirmed address is correct.",
    "Query about a standing order amount; amended at customer's request.",
    "Customer is vulnerable and prefers calls in the morning.",
    "Asked how to register for paperless statements.",
    "Card declined at a shop; no block found, advised to retry.",
    "Enquired about a personal loan; sent the eligibility checker link.",
    "Refund from a merchant not yet credited; advised to wait five days.",
    "Wants a new PIN sent by post.",
    "Joint account holder to be added; forms sent.",
    "Chasing the outcome of a complaint opened last week.",
    "Asked about fees for international transfers.",
    "Customer confirmed recent transactions are genuine after a fraud alert.",
    "Mortgage payment date change requested; passed to the mortgage team.",
)


# --- pools drawn from Faker once per country ---------------------------------

_NAME_PATTERN = re.compile(r"[A-Z][A-Za-z'\- ]*[a-z]")


@dataclass(frozen=True)
class _Pools:
    """Names and streets drawn once from Faker; customers are combinations of these."""

    female: tuple[str, ...]
    male: tuple[str, ...]
    last: tuple[str, ...]
    streets: tuple[str, ...]


def _names(draw: Callable[[], str]) -> tuple[str, ...]:
    # Keep plain Latin names so that e-mail handles and licence initials can be made from them.
    drawn = (draw() for _ in range(_POOL_SIZE))
    return tuple(name for name in drawn if _NAME_PATTERN.fullmatch(name))


def _streets(fake: Faker, country: str, surnames: Sequence[str]) -> tuple[str, ...]:
    if country == "IN":
        return tuple(fake.street_name() for _ in range(_POOL_SIZE))
    common, suffixes = (
        (_GB_COMMON_STREETS, _GB_STREET_SUFFIXES)
        if country == "GB"
        else (_US_COMMON_STREETS, _US_STREET_SUFFIXES)
    )
    # Faker's weighted surname draw is slow (70 µs in en_US): reuse the surname pool.
    pick = fake.random.choice
    named = [f"{pick(surnames)} {pick(suffixes)}" for _ in range(_POOL_SIZE)]
    return tuple(named + list(common) * (_POOL_SIZE // 4 // len(common)))


# Pools are immutable, so factories with the same seed share them.
@functools.lru_cache(maxsize=16)
def _pools(country: str, seed: int) -> _Pools:
    fake = Faker(_LOCALES[country])
    fake.seed_instance(seed)
    surnames = _names(fake.last_name)
    return _Pools(
        female=_names(fake.first_name_female),
        male=_names(fake.first_name_male),
        last=surnames,
        streets=_streets(fake, country, surnames),
    )


# --- numeric helpers ---------------------------------------------------------


def _ascii(codes: NDArray[np.uint8]) -> list[str]:
    """Turn an (n, k) array of ASCII codes into n strings of k characters, in C."""
    rows = np.ascontiguousarray(codes).view(f"S{codes.shape[1]}").ravel()
    return rows.astype(f"U{codes.shape[1]}").tolist()


def _digits(rng: np.random.Generator, n: int, k: int) -> NDArray[np.uint8]:
    return rng.integers(0, 10, size=(n, k), dtype=np.uint8)


def _digit_strings(rng: np.random.Generator, n: int, k: int, lead: str = "0123456789") -> list[str]:
    """n random strings of k digits, the first drawn from ``lead``."""
    codes = _digits(rng, n, k) + ord("0")
    codes[:, 0] = np.frombuffer(lead.encode(), dtype=np.uint8)[rng.integers(0, len(lead), n)]
    return _ascii(codes)


def _letters(rng: np.random.Generator, n: int, k: int, alphabet: str) -> list[str]:
    table = np.frombuffer(alphabet.encode(), dtype=np.uint8)
    return _ascii(table[rng.integers(0, len(table), size=(n, k))])


def _pick(rng: np.random.Generator, n: int, weighted: Sequence[tuple[str, float]]) -> list[str]:
    values = [value for value, _ in weighted]
    weights = np.array([weight for _, weight in weighted])
    return [values[i] for i in rng.choice(len(values), size=n, p=weights / weights.sum()).tolist()]


def _luhn_digits(body: NDArray[np.int64]) -> _Ints:
    """Luhn check digits (ISO/IEC 7812-1 annex B) for each row of digits."""
    reversed_body = body[:, ::-1]
    doubled = reversed_body[:, ::2] * 2  # the digit left of the check digit is doubled
    total = (doubled - 9 * (doubled > 9)).sum(axis=1) + reversed_body[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10  # type: ignore[no-any-return]


def _prefix_digits(prefixes: _Ints, width: int) -> _Ints:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (prefixes[:, None] // powers) % 10


def _cards(
    rng: np.random.Generator, n: int, mix: Sequence[tuple[int, int, int, float]]
) -> list[str]:
    shares = np.array([share for *_, share in mix])
    scheme = rng.choice(len(mix), size=n, p=shares / shares.sum())
    cards = [""] * n
    for index, (first, last, length, _) in enumerate(mix):
        rows = np.flatnonzero(scheme == index)
        width = len(str(first))
        body = rng.integers(0, 10, size=(rows.size, length), dtype=np.int64)
        body[:, :width] = _prefix_digits(rng.integers(first, last + 1, size=rows.size), width)
        body[:, -1] = _luhn_digits(body[:, :-1])
        for row, number in zip(
            rows.tolist(), _ascii((body + ord("0")).astype(np.uint8)), strict=True
        ):
            cards[row] = number
    return cards


# --- one batch of people -----------------------------------------------------


@dataclass
class _People:
    """The draws that several fields share: who each customer is and where they live."""

    rng: np.random.Generator
    country: str
    size: int
    female: list[bool]
    first: list[str]
    middle: list[str]
    last: list[str]
    born: NDArray[np.datetime64]
    town: list[tuple[str, ...]]
    street: list[str]

    def birth_parts(self) -> tuple[list[int], list[int], list[int]]:
        """Year, month and day of each birth date."""
        years = self.born.astype("datetime64[Y]").astype(np.int64) + 1970
        months = self.born.astype("datetime64[M]")
        days = (self.born - months).astype(np.int64) + 1
        return years.tolist(), (months.astype(np.int64) % 12 + 1).tolist(), days.tolist()


def _ages(rng: np.random.Generator, n: int) -> _Ints:
    # Adults 18-90: flat to 65, then thinning as the population does.
    ages = np.arange(18, 91)
    weights = np.where(ages <= 65, 1.0, 1.0 - 0.75 * (ages - 65) / 25)
    return rng.choice(ages, size=n, p=weights / weights.sum())


def _births(rng: np.random.Generator, n: int, as_of: date) -> NDArray[np.datetime64]:
    # Whole years of 365.25 days, rounded up, keep everyone at least their drawn age.
    days = np.ceil(_ages(rng, n) * 365.25).astype(np.int64) + rng.integers(0, 365, n)
    born: NDArray[np.datetime64] = np.datetime64(as_of, "D") - days
    return born


def _choose(rng: np.random.Generator, pool: Sequence[str], n: int) -> list[str]:
    return [pool[i] for i in rng.integers(0, len(pool), n).tolist()]


def _people(rng: np.random.Generator, pools: _Pools, country: str, n: int, as_of: date) -> _People:
    female = (rng.random(n) < 0.51).tolist()
    women, men = _choose(rng, pools.female, n), _choose(rng, pools.male, n)
    second_women, second_men = _choose(rng, pools.female, n), _choose(rng, pools.male, n)
    has_middle = (rng.random(n) < _MIDDLE_NAME_SHARE[country]).tolist()
    towns = _TOWNS[country]
    return _People(
        rng=rng,
        country=country,
        size=n,
        female=female,
        first=[w if f else m for f, w, m in zip(female, women, men, strict=True)],
        middle=[
            (w if f else m) if h else ""
            for f, h, w, m in zip(female, has_middle, second_women, second_men, strict=True)
        ],
        last=_choose(rng, pools.last, n),
        born=_births(rng, n, as_of),
        town=[towns[i] for i in rng.integers(0, len(towns), n).tolist()],
        street=_choose(rng, pools.streets, n),
    )


@functools.cache
def _handle(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


# --- identity and contact ----------------------------------------------------


def _identity(people: _People) -> _Columns:
    names = [
        f"{f} {m} {s}" if m else f"{f} {s}"
        for f, m, s in zip(people.first, people.middle, people.last, strict=True)
    ]
    return {
        FieldType.NAME: names,
        FieldType.DATE_OF_BIRTH: people.born.astype(str).tolist(),
    }


_LOCAL_PARTS: Final[tuple[Callable[[str, str, int, int], str], ...]] = (
    lambda f, s, n, y: f"{f}.{s}",
    lambda f, s, n, y: f"{f}{s}",
    lambda f, s, n, y: f"{f[0]}{s}",
    lambda f, s, n, y: f"{f}.{s}{n}",
    lambda f, s, n, y: f"{f}_{s}",
    lambda f, s, n, y: f"{f}{y % 100:02d}",
    lambda f, s, n, y: f"{s}.{f}",
    lambda f, s, n, y: f"{f}.{s}{y}",
    lambda f, s, n, y: f"{f[0]}.{s}{n}",
)
_LOCAL_PART_SHARES: Final = (0.25, 0.15, 0.10, 0.15, 0.05, 0.08, 0.05, 0.07, 0.10)


def _emails(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    shares = np.array(_LOCAL_PART_SHARES)
    pattern = rng.choice(len(_LOCAL_PARTS), size=n, p=shares / shares.sum()).tolist()
    number = rng.integers(1, 100, n).tolist()
    capitalised = (rng.random(n) < 0.03).tolist()  # a few people type their name capitalised
    years = people.birth_parts()[0]
    domains = _pick(rng, n, _EMAIL_DOMAINS[people.country])
    emails = []
    rows = zip(people.first, people.last, pattern, number, years, capitalised, domains, strict=True)
    for first, last, p, num, year, cap, domain in rows:
        local = _LOCAL_PARTS[p](_handle(first), _handle(last), num, year)
        emails.append(f"{local.title() if cap else local}@{domain}")
    return emails


def _gb_address(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    house = rng.integers(1, 160, n).tolist()
    flat = rng.integers(1, 30, n).tolist()
    is_flat = (rng.random(n) < 0.12).tolist()
    district = rng.random(n).tolist()
    inward = _letters(rng, n, 2, _POSTCODE_LETTERS)
    sector = rng.integers(0, 10, n).tolist()
    addresses = []
    rows = zip(
        people.town, people.street, house, flat, is_flat, district, sector, inward, strict=True
    )
    for (town, area, top), street, h, f, is_f, d, sec, letters in rows:
        postcode = f"{area}{1 + int(d * int(top))} {sec}{letters}"
        door = f"Flat {f}, {h} {street}" if is_f else f"{h} {street}"
        addresses.append(f"{door}, {town}, {postcode}")
    return addresses


def _us_address(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    house = rng.integers(1, 9999, n).tolist()
    apartment = rng.integers(1, 40, n).tolist()
    has_apartment = (rng.random(n) < 0.15).tolist()
    zip_tail = rng.integers(1, 100, n).tolist()
    addresses = []
    rows = zip(people.town, people.street, house, apartment, has_apartment, zip_tail, strict=True)
    for (city, state, zip3, _), street, h, apt, has_apt, tail in rows:
        door = f"{h} {street} Apt {apt}" if has_apt else f"{h} {street}"
        addresses.append(f"{door}, {city}, {state} {zip3}{tail:02d}")
    return addresses


def _in_address(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    block = rng.integers(1, 99, n).tolist()
    house = rng.integers(1, 999, n).tolist()
    style = rng.integers(0, 3, n).tolist()
    pin_tail = rng.integers(1, 100, n).tolist()
    addresses = []
    rows = zip(people.town, people.street, block, house, style, pin_tail, strict=True)
    for (city, state, pin3, _), street, b, h, s, tail in rows:
        door = (f"H.No. {h}", f"{b}/{h}", f"Flat {h}")[s]
        addresses.append(f"{door}, {street}, {city}, {state} {pin3}{tail:03d}")
    return addresses


def _gb_phones(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    mobiles = _digit_strings(rng, n, 9, _GB_MOBILE_PREFIXES)
    is_mobile = (rng.random(n) < 0.85).tolist()
    area = rng.integers(0, len(_GB_LANDLINES), n).tolist()
    lines = _digit_strings(rng, n, 8, "23456789")
    phones = []
    for mobile, is_m, a, line in zip(mobiles, is_mobile, area, lines, strict=True):
        code, digits = _GB_LANDLINES[a]
        phones.append(f"+447{mobile}" if is_m else f"+44{code}{line[:digits]}")
    return phones


def _us_phones(people: _People) -> list[str]:
    numbers = _digit_strings(people.rng, people.size, 7, "23456789")  # NANP: exchange 2-9
    return [f"+1{town[3]}{number}" for town, number in zip(people.town, numbers, strict=True)]


def _in_phones(people: _People) -> list[str]:
    # TRAI numbering plan: mobile numbers start 6-9.
    return [f"+91{number}" for number in _digit_strings(people.rng, people.size, 10, "6789")]


_ADDRESSES: Final = {"GB": _gb_address, "US": _us_address, "IN": _in_address}
_PHONES: Final = {"GB": _gb_phones, "US": _us_phones, "IN": _in_phones}


def _contact(people: _People) -> _Columns:
    return {
        FieldType.ADDRESS: _ADDRESSES[people.country](people),
        FieldType.PHONE: _PHONES[people.country](people),
        FieldType.EMAIL: _emails(people),
    }


# --- banking -----------------------------------------------------------------


def _iban_remainder(text: str) -> int:
    # ISO 13616: letters count as 10 (A) to 35 (Z) in the mod-97 check.
    return int("".join(str(int(char, 36)) for char in text)) % 97


def _gb_iban_check(
    bank: _Ints, sort_codes: NDArray[np.uint8], accounts: NDArray[np.uint8]
) -> _Ints:
    """ISO 7064 mod 97-10 check digits of GB IBANs, one row per customer."""
    bank_remainders = np.array([_iban_remainder(code) for code, _, _ in _GB_BANKS], dtype=np.int64)
    remainder = bank_remainders[bank]
    for column in np.hstack([sort_codes, accounts]).astype(np.int64).T:
        remainder = (remainder * 10 + column) % 97
    # The country code and "00" move to the end: "GB00" reads as 161100.
    remainder = (remainder * 1_000_000 + 161100) % 97
    return 98 - remainder


def _gb_banking(people: _People) -> _Columns:
    rng, n = people.rng, people.size
    shares = np.array([share for *_, share in _GB_BANKS])
    bank = rng.choice(len(_GB_BANKS), size=n, p=shares / shares.sum())
    sort_codes = _digits(rng, n, 6)
    for index, (_, prefix, _) in enumerate(_GB_BANKS):
        rows = bank == index
        sort_codes[rows, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8) - ord("0")
    accounts = _digits(rng, n, 8)
    checks = _gb_iban_check(bank, sort_codes, accounts).tolist()
    sort_text = _ascii(sort_codes + ord("0"))
    account_text = _ascii(accounts + ord("0"))
    codes = [_GB_BANKS[i][0] for i in bank.tolist()]
    ibans = [
        f"GB{check:02d}{code}{sort}{account}"
        for check, code, sort, account in zip(checks, codes, sort_text, account_text, strict=True)
    ]
    return {
        FieldType.SORT_CODE: sort_text,
        FieldType.ACCOUNT_NUMBER: account_text,
        FieldType.IBAN: ibans,
    }


def _variable_digits(people: _People, lengths: Sequence[int]) -> list[str]:
    numbers = _digit_strings(people.rng, people.size, max(lengths), "123456789")
    chosen = people.rng.choice(np.array(lengths), size=people.size).tolist()
    return [number[:length] for number, length in zip(numbers, chosen, strict=True)]


def _us_banking(people: _People) -> _Columns:
    return {FieldType.ACCOUNT_NUMBER: _variable_digits(people, (10, 11, 12))}


def _in_banking(people: _People) -> _Columns:
    # SBI 11 digits, ICICI 12, HDFC 14, Axis 15, Kotak 16 (banks' published formats).
    return {FieldType.ACCOUNT_NUMBER: _variable_digits(people, (11, 12, 14, 15, 16))}


def _card(people: _People) -> _Columns:
    return {FieldType.CARD_NUMBER: _cards(people.rng, people.size, _CARD_MIX[people.country])}


# --- government identifiers --------------------------------------------------

# HMRC NIM39110: no D F I Q U V in the prefix, no O second, some pairs never issued.
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_PREFIXES: Final = tuple(
    a + b
    for a in _NINO_FIRST
    for b in _NINO_SECOND
    if a + b not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
)


def _ninos(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    prefixes = _choose(rng, _NINO_PREFIXES, n)
    numbers = _digit_strings(rng, n, 6)
    suffixes = _letters(rng, n, 1, "ABCD")
    return [f"{p}{d}{s}" for p, d, s in zip(prefixes, numbers, suffixes, strict=True)]


@functools.cache
def _dvla_surname(surname: str) -> str:
    # DVLA: the first five letters of the surname, "MAC" read as "MC", padded with 9s.
    letters = re.sub(r"[^A-Z]", "", surname.upper())
    if letters.startswith("MAC"):
        letters = "MC" + letters[3:]
    return letters[:5].ljust(5, "9")


def _dvla_licences(people: _People) -> list[str]:
    # DVLA licence number: surname, decade, month (+50 for women), day, year digit,
    # initials, an arbitrary digit (usually 9) and two check characters.
    rng, n = people.rng, people.size
    years, months, days = people.birth_parts()
    spare = _letters(rng, n, 1, "9999999998")
    checks = _letters(rng, n, 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    licences = []
    names = zip(people.last, people.first, people.middle, people.female, strict=True)
    births = zip(years, months, days, strict=True)
    for (last, first, middle, female), (year, month, day), digit, check in zip(
        names, births, spare, checks, strict=True
    ):
        initials = f"{first[0]}{middle[:1] or '9'}".upper()
        birth = f"{year // 10 % 10}{month + 50 * female:02d}{day:02d}{year % 10}"
        licences.append(f"{_dvla_surname(last)}{birth}{initials}{digit}{check}")
    return licences


def _gb_documents(people: _People) -> _Columns:
    return {
        FieldType.PASSPORT_NUMBER: _digit_strings(people.rng, people.size, 9, "123456"),
        FieldType.DRIVING_LICENCE: _dvla_licences(people),
        FieldType.NINO: _ninos(people),
    }


def _us_documents(people: _People) -> _Columns:
    rng, n = people.rng, people.size
    # Next Generation passports (2021 on) carry a letter and 8 digits; older ones 9 digits.
    older = _digit_strings(rng, n, 9, "123456789")
    newer = _letters(rng, n, 1, "ACEFGHJKLMNPRSTUVWXYZ")
    is_new = (rng.random(n) < 0.4).tolist()
    passports = [
        f"{letter}{old[1:]}" if new else old
        for old, letter, new in zip(older, newer, is_new, strict=True)
    ]
    # Several states (Florida, Illinois, Wisconsin) start with the surname's initial.
    serials = _variable_digits(people, (7, 8, 12))
    licences = [
        f"{last[0].upper()}{serial}" for last, serial in zip(people.last, serials, strict=True)
    ]
    return {FieldType.PASSPORT_NUMBER: passports, FieldType.DRIVING_LICENCE: licences}


def _pans(people: _People) -> list[str]:
    # PAN: three letters, holder type (P, individual), surname initial, serial, check letter.
    rng, n = people.rng, people.size
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    heads, tails = _letters(rng, n, 3, alphabet), _letters(rng, n, 1, alphabet)
    serials = rng.integers(1, 10000, n).tolist()
    return [
        f"{head}P{last[0].upper()}{serial:04d}{tail}"
        for head, last, serial, tail in zip(heads, people.last, serials, tails, strict=True)
    ]


def _in_licences(people: _People) -> list[str]:
    # MoRTH licence: state code, RTO number, year of issue, 7-digit serial.
    rng, n = people.rng, people.size
    years = np.array(people.birth_parts()[0])
    issued = np.minimum(years + 18 + rng.integers(0, 25, n), AS_OF.year - 1).tolist()
    rto = rng.integers(1, 50, n).tolist()
    serials = _digit_strings(rng, n, 7)
    return [
        f"{town[3]}{office:02d}{year}{serial}"
        for town, office, year, serial in zip(people.town, rto, issued, serials, strict=True)
    ]


def _in_documents(people: _People) -> _Columns:
    letters = _letters(people.rng, people.size, 1, "ABCDEFGHJKLMNPRSTUVWY")
    digits = _digit_strings(people.rng, people.size, 7, "123456789")
    return {
        FieldType.PASSPORT_NUMBER: [a + b for a, b in zip(letters, digits, strict=True)],
        FieldType.DRIVING_LICENCE: _in_licences(people),
        FieldType.PAN: _pans(people),
    }


# --- money and notes ---------------------------------------------------------


def _balances(people: _People) -> list[str]:
    rng, n = people.rng, people.size
    median, spread, overdrawn_share, overdraft, limit = _BALANCES[people.country]
    cents = np.rint(rng.lognormal(np.log(median * 100), spread, n)).astype(np.int64)
    if overdrawn_share:
        debts = np.rint(rng.lognormal(np.log(overdraft * 100), 1.0, n)).astype(np.int64)
        debts = np.clip(debts, 1, int(limit * 100))
        cents = np.where(rng.random(n) < overdrawn_share, -debts, cents)
    return [f"{'-' if c < 0 else ''}{abs(c) // 100}.{abs(c) % 100:02d}" for c in cents.tolist()]


def _money(people: _People) -> _Columns:
    return {
        FieldType.BALANCE: _balances(people),
        FieldType.NOTES: _choose(people.rng, _NOTES, people.size),
    }


_Part = Callable[[_People], _Columns]
# The order is part of the stream: changing it changes every seed's customers.
_PARTS: Final[dict[str, tuple[_Part, ...]]] = {
    "GB": (_identity, _contact, _gb_banking, _card, _gb_documents, _money),
    "US": (_identity, _contact, _us_banking, _card, _us_documents, _money),
    "IN": (_identity, _contact, _in_banking, _card, _in_documents, _money),
}


@dataclass
class _Stream:
    """One country's pools and random stream."""

    pools: _Pools
    rng: np.random.Generator


class IdentityFactory:
    """Makes synthetic customers; the same seed always gives the same customers."""

    def __init__(self, seed: int) -> None:
        """Prepare a factory; each country's Faker pools are built on first use."""
        if seed < 0:
            raise ValueError("seed must be a non-negative integer")
        self._seed = seed
        self._streams: dict[str, _Stream] = {}

    def batch(self, country: str, count: int) -> list[dict[str, str]]:
        """Return ``count`` customers of a client country (GB, US, IN), continuing its stream."""
        code = country.upper()
        if code not in _COUNTRY_STREAMS:
            raise ValueError(f"unknown client country {country!r}; known: GB, IN, US")
        if count < 0:
            raise ValueError("count must not be negative")
        stream = self._stream(code)
        people = _people(stream.rng, stream.pools, code, count, AS_OF)
        columns: _Columns = {}
        for part in _PARTS[code]:
            columns.update(part(people))
        fields = FIELD_COUNTRIES[code]
        keys = [field.value for field in fields]
        rows = zip(*(columns[field] for field in fields), strict=True)
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def _stream(self, country: str) -> _Stream:
        if country not in self._streams:
            faker_seed, numpy_seed = np.random.SeedSequence(
                [self._seed, _COUNTRY_STREAMS[country]]
            ).spawn(2)
            self._streams[country] = _Stream(
                pools=_pools(country, int(faker_seed.generate_state(1)[0])),
                rng=np.random.Generator(np.random.PCG64(numpy_seed)),
            )
        return self._streams[country]
