"""Synthetic customers: valid in every field, consistent across fields, reproducible by seed."""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
from collections import Counter
from datetime import date

import pytest
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn

from bpoguard.fields import FieldType
from bpoguard.simulate.identities import AS_OF, IdentityFactory
from bpoguard.validators import FIELD_COUNTRIES, validate

COUNTRIES = ("GB", "US", "IN")
# Fields whose generated value is already canonical; names, addresses and
# e-mails keep the capitals a customer file would show.
DISPLAY_FIELDS = {FieldType.NAME, FieldType.ADDRESS, FieldType.EMAIL}

Customers = dict[str, list[dict[str, str]]]


@pytest.fixture(scope="module")
def customers() -> Customers:
    factory = IdentityFactory(seed=2024)
    return {country: factory.batch(country, 2000) for country in COUNTRIES}


def _digest(batch: list[dict[str, str]]) -> str:
    return hashlib.sha256(json.dumps(batch, sort_keys=True).encode()).hexdigest()


@pytest.mark.parametrize("country", COUNTRIES)
def test_every_generated_value_validates_for_its_country(
    customers: Customers, country: str
) -> None:
    for customer in customers[country]:
        assert list(customer) == [field.value for field in FIELD_COUNTRIES[country]]
        for name, value in customer.items():
            field = FieldType(name)
            canonical = validate(field, value, country, today=AS_OF)
            if field not in DISPLAY_FIELDS:
                assert canonical == value, field


def test_most_emails_are_lower_case_and_derived_from_the_name(customers: Customers) -> None:
    batch = customers["GB"]
    lower = sum(c["email"] == c["email"].lower() for c in batch)
    assert lower / len(batch) > 0.9
    for customer in batch:
        local = customer["email"].split("@")[0].lower()
        first, *_, last = customer["name"].lower().split()
        assert first[0] in local
        assert first in local or last.replace("'", "").replace("-", "") in local


def test_generated_card_numbers_pass_luhn_and_have_known_prefix(customers: Customers) -> None:
    prefixes = {
        "GB": ("4", "51", "52", "53", "54", "55", "2", "34", "37"),
        "US": ("4", "51", "52", "53", "54", "55", "2", "34", "37", "6011", "65"),
        "IN": ("4", "51", "52", "53", "54", "55", "2", "60", "6521", "6522", "81", "82", "508"),
    }
    for country, batch in customers.items():
        for customer in batch:
            card = customer["card_number"]
            assert stdnum_luhn.is_valid(card)
            assert card.startswith(prefixes[country])
            assert len(card) == (15 if card[:2] in ("34", "37") else 16)
    rupay = [c for c in customers["IN"] if c["card_number"].startswith(("60", "81", "82", "508"))]
    assert len(rupay) > 200


def test_gb_iban_embeds_sort_code_and_account_number(customers: Customers) -> None:
    for customer in customers["GB"]:
        iban = customer["iban"]
        assert stdnum_iban.is_valid(iban)
        assert iban[8:14] == customer["sort_code"]
        assert iban[14:] == customer["account_number"]
    banks = Counter(c["iban"][4:8] for c in customers["GB"])
    assert len(banks) >= 8
    barclays = [c for c in customers["GB"] if c["iban"][4:8] == "BARC"]
    assert barclays
    assert all(c["sort_code"].startswith("20") for c in barclays)


def test_uk_licence_encodes_surname_and_date_of_birth(customers: Customers) -> None:
    women = 0
    for customer in customers["GB"]:
        licence = customer["driving_licence"]
        born = date.fromisoformat(customer["date_of_birth"])
        names = customer["name"].upper().split()
        surname = "".join(ch for ch in names[-1] if ch.isalpha())
        surname = "MC" + surname[3:] if surname.startswith("MAC") else surname
        assert licence[:5] == surname[:5].ljust(5, "9")
        assert licence[5] == str(born.year)[2]
        month = int(licence[6:8])
        assert month in (born.month, born.month + 50)
        women += month > 50
        assert int(licence[8:10]) == born.day
        assert licence[10] == str(born.year)[3]
        assert licence[11] == names[0][0]
        assert licence[12] == (names[1][0] if len(names) == 3 else "9")
    assert 0.4 < women / len(customers["GB"]) < 0.6


def test_pan_is_an_individuals_with_the_surname_initial(customers: Customers) -> None:
    for customer in customers["IN"]:
        pan = customer["pan"]
        assert pan[3] == "P"
        assert pan[4] == customer["name"].split()[-1][0].upper()


def test_indian_licence_names_the_state_of_the_address(customers: Customers) -> None:
    states = {"Maharashtra": "MH", "Karnataka": "KA", "Tamil Nadu": "TN", "Delhi": "DL"}
    seen = 0
    for customer in customers["IN"]:
        for state, code in states.items():
            if f", {state} " in customer["address"]:
                assert customer["driving_licence"].startswith(code)
                seen += 1
    assert seen > 100


def test_phones_are_e164_in_the_clients_country(customers: Customers) -> None:
    codes = {"GB": "+44", "US": "+1", "IN": "+91"}
    for country, batch in customers.items():
        assert all(c["phone"].startswith(codes[country]) for c in batch)
    mobiles = sum(c["phone"].startswith("+447") for c in customers["GB"])
    assert mobiles / len(customers["GB"]) > 0.7


def test_ages_are_adults_between_18_and_90(customers: Customers) -> None:
    for batch in customers.values():
        ages = [(AS_OF - date.fromisoformat(c["date_of_birth"])).days / 365.25 for c in batch]
        assert 18 <= min(ages) < 20
        assert 85 < max(ages) < 91
        assert 40 < statistics.median(ages) < 55


def test_balances_are_log_normal_with_some_overdrawn_in_gb(customers: Customers) -> None:
    balances = [float(c["balance"]) for c in customers["GB"]]
    assert 800 < statistics.median(balances) < 4000
    assert 0.03 < sum(b < 0 for b in balances) / len(balances) < 0.12
    assert max(balances) > 20 * statistics.median(balances)
    rupees = statistics.median(float(c["balance"]) for c in customers["IN"])
    assert rupees > 10 * statistics.median(balances)


def test_notes_carry_no_digits_and_come_from_a_small_pool(customers: Customers) -> None:
    notes = {c["notes"] for batch in customers.values() for c in batch}
    assert 20 <= len(notes) <= 40
    assert not any(ch.isdigit() for note in notes for ch in note)


def test_same_seed_gives_identical_customers_from_two_factories() -> None:
    first, second = IdentityFactory(7), IdentityFactory(7)
    assert first.batch("GB", 300) == second.batch("GB", 300)
    assert first.batch("GB", 300) == second.batch("GB", 300)


def test_consecutive_batches_continue_the_stream() -> None:
    factory = IdentityFactory(7)
    opening, following = factory.batch("US", 200), factory.batch("US", 200)
    assert opening != following
    assert opening == IdentityFactory(7).batch("US", 200)


def test_countries_have_independent_streams() -> None:
    one, other = IdentityFactory(11), IdentityFactory(11)
    one_gb = one.batch("GB", 100)
    other_in = other.batch("IN", 100)
    assert one.batch("IN", 100) == other_in
    assert other.batch("GB", 100) == one_gb


def test_different_seeds_give_different_customers() -> None:
    one, other = IdentityFactory(1).batch("GB", 200), IdentityFactory(2).batch("GB", 200)
    assert sum(a["card_number"] == b["card_number"] for a, b in zip(one, other, strict=True)) == 0
    assert len({c["name"] for c in one} ^ {c["name"] for c in other}) > 100


def test_same_seed_gives_the_same_bytes_in_another_process() -> None:
    script = (
        "import hashlib, json; from bpoguard.simulate.identities import IdentityFactory; "
        "f = IdentityFactory(99); "
        "print(*(hashlib.sha256(json.dumps(f.batch(c, 300), sort_keys=True).encode())"
        ".hexdigest() for c in ('GB', 'US', 'IN')))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    factory = IdentityFactory(99)
    here = [_digest(factory.batch(country, 300)) for country in COUNTRIES]
    assert result.stdout.split() == here


def test_batch_refuses_unknown_country_and_negative_count() -> None:
    factory = IdentityFactory(1)
    assert factory.batch("gb", 0) == []
    with pytest.raises(ValueError, match="known: GB, IN, US"):
        factory.batch("FR", 1)
    with pytest.raises(ValueError, match="negative"):
        factory.batch("GB", -1)
