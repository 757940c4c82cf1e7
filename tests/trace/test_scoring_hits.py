"""The dump's hits in arrays are the per-customer filter they replaced, and score the same."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bpoguard.trace.scoring import AccessIndex, _hits, attribute

PEOPLE = [f"p{i}" for i in range(6)]


def _reference(
    index: AccessIndex, ids: np.ndarray, pos: np.ndarray, relevant: dict[int, set[int]] | None
) -> dict[int, list[int]]:
    """One customer at a time, as the scoring did before (a set test per person)."""
    found: dict[int, list[int]] = {}
    for cid, p in zip(ids.tolist(), pos.tolist(), strict=True):
        if p < 0:
            continue
        who = index.accessors_of(p).tolist()
        if relevant is not None and cid in relevant:
            who = [w for w in who if w in relevant[cid]]
        found[cid] = who
    return found


pairs = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 12)), max_size=40)
# Person indexes out of range, and customers outside the dump or nobody accessed, included.
relevance = st.none() | st.dictionaries(
    st.integers(0, 14), st.sets(st.integers(-1, 7), max_size=5), max_size=10
)


@settings(max_examples=300, deadline=None)
@given(pairs, st.sets(st.integers(0, 14), min_size=1, max_size=12), relevance)
def test_the_hits_are_each_customers_people_narrowed_as_before(
    accesses: list[tuple[int, int]], dump: set[int], relevant: dict[int, set[int]] | None
) -> None:
    index = AccessIndex.from_pairs(PEOPLE, [p for p, _ in accesses], [c for _, c in accesses])
    ids = np.array(sorted(dump), dtype=np.int64)
    pos = index.positions(ids)
    hits = _hits(index, ids, pos, relevant)
    expected = _reference(index, ids, pos, relevant)
    for i, cid in enumerate(ids.tolist()):
        got = hits.people[hits.start[i] : hits.start[i] + hits.count[i]].tolist()
        assert got == expected.get(cid, [])


def test_a_narrowed_customer_counts_only_for_the_people_who_saw_its_fields() -> None:
    # p0 and p1 opened customers 1-4; only p0 saw the leaked fields of 1, 2 and 3.
    accesses = [(0, c) for c in (1, 2, 3, 4)] + [(1, c) for c in (1, 2, 3, 4)]
    index = AccessIndex.from_pairs(PEOPLE, [p for p, _ in accesses], [c for _, c in accesses])
    everyone = attribute(index, [1, 2, 3, 4])
    narrowed = attribute(index, [1, 2, 3, 4], {1: {0}, 2: {0}, 3: {0}})
    assert {s.person: s.records for s in everyone.ranking} == {
        "p0": (1, 2, 3, 4),
        "p1": (1, 2, 3, 4),
    }
    assert {s.person: s.records for s in narrowed.ranking} == {"p0": (1, 2, 3, 4), "p1": (4,)}
