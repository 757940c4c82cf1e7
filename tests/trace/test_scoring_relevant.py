"""Relevance as arrays scores as the plain mapping does; the ranking reuses the first round's scores."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard.trace.scoring import (
    MAX_SUSPECTS,
    AccessIndex,
    Attribution,
    Relevant,
    _best,
    _hits,
    _scores,
    attribute,
)

PEOPLE = [f"p{i}" for i in range(6)]
pairs = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 12)), max_size=60)
relevance = st.dictionaries(st.integers(0, 14), st.sets(st.integers(0, 5), max_size=5), max_size=10)


def _relevant(mapping: dict[int, set[int]]) -> Relevant:
    width = len(PEOPLE)
    keys = sorted(c * width + p for c, people in mapping.items() for p in people)
    return Relevant(
        np.array(sorted(mapping), dtype=np.int64), np.array(keys, dtype=np.int64), width
    )


@settings(max_examples=300, deadline=None)
@given(pairs, st.sets(st.integers(0, 14), min_size=1, max_size=12), relevance)
def test_relevant_is_the_mapping_and_gives_the_same_hits(
    accesses: list[tuple[int, int]], dump: set[int], mapping: dict[int, set[int]]
) -> None:
    relevant = _relevant(mapping)
    assert relevant == mapping and dict(relevant.items()) == mapping
    index = AccessIndex.from_pairs(PEOPLE, [p for p, _ in accesses], [c for _, c in accesses])
    ids = np.array(sorted(dump), dtype=np.int64)
    pos = index.positions(ids)
    fast, plain = _hits(index, ids, pos, relevant), _hits(index, ids, pos, dict(mapping))
    assert fast.people.tolist() == plain.people.tolist()
    assert fast.count.tolist() == plain.count.tolist()
    assert attribute(index, dump, relevant) == attribute(index, dump, dict(mapping))


def _round_by_round(index: AccessIndex, dump: set[int]) -> Attribution:
    """Every round scored afresh and the ranking scored again on the whole dump (as before)."""
    ids = np.unique(np.fromiter(dump, dtype=np.int64))
    pos = index.positions(ids)
    weight = np.diff(index.indptr).astype(np.float64) / max(1, index.pairs)
    tested = max(1, int(np.count_nonzero(index.person_size)))
    hits = _hits(index, ids, pos, None)
    remaining = set(int(c) for c in ids[pos >= 0])
    chosen = []
    for number in range(1, MAX_SUSPECTS + 1):
        best = _best(index, hits, remaining, weight, ids, pos, tested, number)
        if best is None or not best.significant:
            break
        chosen.append(best)
        remaining -= set(best.records)
    everyone = set(int(c) for c in ids[pos >= 0])
    ranked = _scores(index, hits, everyone, weight, ids, pos, tested, 0)
    taken = {s.person for s in chosen}
    others = tuple(s for s in ranked if s.person not in taken)[:20]
    never = tuple(int(c) for c in ids[pos < 0])
    return Attribution(tuple(chosen), others, tuple(sorted(remaining)), never, tested)


@settings(max_examples=200, deadline=None)
@given(pairs, st.sets(st.integers(0, 14), min_size=1, max_size=12))
def test_the_ranking_and_the_rounds_are_those_scored_afresh(
    accesses: list[tuple[int, int]], dump: set[int]
) -> None:
    index = AccessIndex.from_pairs(PEOPLE, [p for p, _ in accesses], [c for _, c in accesses])
    assert attribute(index, dump) == _round_by_round(index, dump)


def test_a_culprit_is_chosen_in_round_one_and_ranked_nowhere_else() -> None:
    rng = np.random.default_rng(3)
    people = [f"a{i:03d}" for i in range(300)]
    person = np.repeat(np.arange(300), 40)
    customer = rng.integers(0, 20_000, size=person.size)
    index = AccessIndex.from_pairs(people, person, customer)
    mine = sorted({int(c) for p, c in zip(person, customer, strict=True) if p == 17})[:8]
    result = attribute(index, mine)
    assert result.suspects[0].person == "a017" and result.suspects[0].round == 1
    assert all(s.round == 0 and s.person != "a017" for s in result.others)
    assert result == _round_by_round(index, set(mine))
    first = dataclasses.replace(result.suspects[0], round=0)
    assert first not in result.others


@settings(max_examples=200, deadline=None)
@given(pairs, st.booleans())
def test_pairs_sorted_or_not_give_the_same_index(
    accesses: list[tuple[int, int]], presorted: bool
) -> None:
    if presorted:
        accesses = sorted(set(accesses), key=lambda pc: (pc[1], pc[0]))
    index = AccessIndex.from_pairs(PEOPLE, [p for p, _ in accesses], [c for _, c in accesses])
    unique = sorted(set(accesses), key=lambda pc: (pc[1], pc[0]))
    assert index.pairs == len(unique)
    assert index.accessors.tolist() == [p for p, _ in unique]
    assert index.customers.tolist() == sorted({c for _, c in unique})
    assert index.person_size.tolist() == [sum(p == k for p, _ in unique) for k in range(6)]
