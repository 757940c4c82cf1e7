"""The simulated world's cast: homes, phones and habits drawn from the seed."""

from __future__ import annotations

import datetime as dt
import ipaddress

import numpy as np

from bpoguard.simulate import world

START = dt.date(2026, 3, 2)


def _build(seed: int) -> world.World:
    return world.build(240, 5_000, START, np.random.default_rng([seed, 1]))


def test_every_home_has_its_own_address_in_the_home_range() -> None:
    people = list(_build(1).people.values())
    homes = [p.home_ip for p in people]
    assert len(set(homes)) == len(homes)  # attribution by address names one household
    broadband = ipaddress.ip_network(world.HOME_BROADBAND)
    assert all(ipaddress.ip_address(h) in broadband for h in homes)
    carrier = ipaddress.ip_network(world.MOBILE_CARRIER)
    assert not broadband.overlaps(carrier)


def test_phone_apps_and_contact_habits_spread_over_everyone() -> None:
    people = list(_build(1).people.values())
    share = sum(p.phone_apps for p in people) / len(people)
    assert 0.7 < share < 0.9  # most staff, not all: some never sign in from home
    habits = np.array([p.contact_habit for p in people])
    assert 0.9 < habits.mean() < 1.1 and habits.std() > 0.2 and habits.max() < 3


def test_same_seed_same_cast_and_another_seed_another() -> None:
    one, again, other = _build(4), _build(4), _build(5)
    assert [vars(p) for p in one.people.values()] == [vars(p) for p in again.people.values()]
    assert [p.home_ip for p in one.people.values()] != [p.home_ip for p in other.people.values()]


def test_telco_purposes_let_agents_reveal_the_number_on_file_and_nothing_they_do_not_show() -> None:
    telco = next(c for c in world.CLIENTS if c.id == "org-lakeshore")
    assert all(world.F.PHONE in revealable for _, revealable in telco.purposes.values())
    for client in world.CLIENTS:
        for fields, revealable in client.purposes.values():
            assert set(revealable) <= set(fields)
