"""The scoring core on built access logs: who accessed more of a dump than chance allows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bpoguard.trace.scoring import AccessIndex, _log_tail, attribute


def _world(seed: int = 0, teams: int = 20, team_size: int = 12, pool: int = 400, calls: int = 150):
    """Teams serving overlapping pools of customers, with popular repeat callers."""
    rng = np.random.default_rng(seed)
    people, person, customer = [], [], []
    for t in range(teams):
        base = t * pool // 2  # neighbouring teams share half their pool
        popular = rng.zipf(1.6, size=(team_size, calls)) % pool
        for a in range(team_size):
            people.append(f"T{t:02d}-A{a:02d}")
            person.extend([len(people) - 1] * calls)
            customer.extend((base + popular[a]).tolist())
    index = AccessIndex.from_pairs(people, person, customer)
    return index, rng


def _accessed_by(index: AccessIndex, name: str) -> np.ndarray:
    k = index.people.index(name)
    return np.array(
        [int(index.customers[p]) for p in range(index.customers.size) if k in index.accessors_of(p)]
    )


def test_pairs_are_deduplicated_and_counted_per_person() -> None:
    index = AccessIndex.from_pairs(["a", "b"], [0, 0, 0, 1], [5, 5, 7, 5])
    assert index.pairs == 3
    assert index.person_size.tolist() == [2, 1]
    assert index.positions([5, 6, 7]).tolist() == [0, -1, 1]


def test_five_records_of_one_agent_rank_that_agent_first() -> None:
    index, rng = _world()
    mine = _accessed_by(index, "T03-A05")
    dump = rng.choice(mine, size=5, replace=False).tolist()
    result = attribute(index, dump)
    assert result.ranking[0].person == "T03-A05"
    assert len(result.ranking[0].records) == 5
    assert result.suspects and result.suspects[0].significant


def test_records_from_elsewhere_leave_the_culprit_first_and_are_unexplained() -> None:
    index, rng = _world(seed=1)
    mine = _accessed_by(index, "T07-A02")
    culprit = rng.choice(mine, size=10, replace=False).tolist()
    others = [c for c in rng.choice(index.customers, size=60).tolist() if c not in set(mine)][:10]
    strangers = [10**9 + k for k in range(5)]  # customers nobody here ever accessed
    result = attribute(index, culprit + others + strangers)
    assert result.ranking[0].person == "T07-A02"
    assert set(result.ranking[0].records) == set(culprit)
    assert set(strangers) == set(result.never_accessed)


def test_two_agents_pooling_are_both_chosen_in_rounds() -> None:
    index, rng = _world(seed=2)
    a = rng.choice(_accessed_by(index, "T01-A01"), size=8, replace=False).tolist()
    b = rng.choice(_accessed_by(index, "T12-A09"), size=8, replace=False).tolist()
    result = attribute(index, a + b)
    chosen = [s.person for s in result.suspects]
    assert set(chosen[:2]) == {"T01-A01", "T12-A09"}
    assert result.suspects[1].round == 2
    assert result.suspects[1].considered < len(set(a + b))  # scored on what was left


def test_a_random_dump_names_no_suspect() -> None:
    index, rng = _world(seed=3)
    dump = rng.choice(index.customers, size=10, replace=False).tolist()
    assert attribute(index, dump).suspects == ()


def test_relevant_accessors_narrow_who_counts() -> None:
    index = AccessIndex.from_pairs(["a", "b"], [0, 1, 0, 1], [1, 1, 2, 2])
    result = attribute(index, [1, 2], relevant={1: {1}, 2: {1}})
    assert [s.person for s in result.ranking] == ["b"]


def test_popular_customers_count_for_less_than_rare_ones() -> None:
    # Everyone touched two dump customers and 52 in all; b's two are customers
    # nobody else opened, everyone else's are served by all.
    people = ["a", "b"] + [f"x{k}" for k in range(10)]
    person, customer = [], []
    for k in range(len(people)):
        mine = [3, 4] if people[k] == "b" else [1, 2]
        person += [k] * 52
        customer += mine + list(range(1000 + 100 * k, 1050 + 100 * k))
    result = attribute(AccessIndex.from_pairs(people, person, customer), [1, 2, 3, 4])
    order = [s.person for s in result.ranking]
    assert order[0] == "b"
    assert result.ranking[0].evidence_bits > result.ranking[1].evidence_bits


def test_the_p_value_is_the_binomial_tail() -> None:
    index = AccessIndex.from_pairs(["a", "b"], [0, 0, 1, 1, 1], [1, 2, 1, 3, 4])
    s = next(x for x in attribute(index, [1, 2]).ranking if x.person == "a")
    share = (2 + 1) / 5  # customer 1 has two accessors, customer 2 one; five pairs in all
    expected = 2 * share
    assert s.expected == pytest.approx(expected)
    assert s.p_value == pytest.approx(stats.binom.sf(1, 2, expected / 2))


def test_an_empty_index_explains_nothing() -> None:
    result = attribute(AccessIndex.from_pairs([], [], []), [1, 2, 3])
    assert result.ranking == ()
    assert result.never_accessed == (1, 2, 3)


def test_binomial_tail_is_the_same_as_scipy_stats_binom_logsf() -> None:
    # scoring computes the tail through scipy.special (cheap to import); it must be
    # scipy.stats.binom's own numbers, bit for bit, including tails that underflow.
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 30, 5_000, 60_000):
        k = rng.integers(1, n + 1, size=2_000).astype(np.int64)
        mean = n * 10 ** rng.uniform(-12, 0, size=2_000)
        p = np.clip(mean / n, 1e-300, 1.0 - 1e-12)
        expected = stats.binom.logsf(k - 1, n, p)
        assert np.array_equal(_log_tail(k, n, mean), expected)
    assert np.isneginf(_log_tail(np.array([3_000], dtype=np.int64), 5_000, np.array([1.0]))).all()
