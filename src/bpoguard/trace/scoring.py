"""The statistics of leak attribution: who accessed more of a dump's customers than chance allows.

Pure functions over plain arrays, so the benchmark runs the very code the
command runs. The null model: a person who accessed ``size`` distinct
customers, none of them because of the dump, touches each dump customer
``c`` with a probability proportional to how widely ``c`` is accessed (a
customer everyone serves is no evidence; one only the suspect opened is
strong). The expected number of dump customers such a person touches is
``size * W`` with ``W`` the dump's share of all person-customer pairs; the
p-value is the binomial tail P(X >= k) for ``n`` dump customers at that
mean. A dump can mix sources: after the most significant person is chosen,
the records they explain are set aside and everyone is scored again on the
rest, until nobody stands out.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ALPHA = 0.05  # a suspect's p-value, times the people who could have done it, must be below this
MIN_RECORDS = 2  # one shared customer is what colleagues have in common, not evidence
MAX_SUSPECTS = 10

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class AccessIndex:
    """Who accessed which customers, as compressed arrays (one row per person-customer pair).

    ``customers`` are sorted customer ids; the accessors of ``customers[i]`` are
    ``accessors[indptr[i]:indptr[i + 1]]`` (indexes into ``people``).
    """

    people: tuple[str, ...]
    customers: IntArray
    indptr: IntArray
    accessors: IntArray
    person_size: IntArray  # distinct customers each person accessed
    pairs: int

    @classmethod
    def from_pairs(
        cls, people: Sequence[str], person: npt.ArrayLike, customer: npt.ArrayLike
    ) -> AccessIndex:
        """Build from parallel arrays of person index and customer id (duplicates are merged)."""
        p = np.asarray(person, dtype=np.int64)
        c = np.asarray(customer, dtype=np.int64)
        if p.size:
            key = c * max(1, len(people)) + p
            # Sort and drop repeats (numpy's hashing unique is slow on wide int64 keys),
            # unless they already are: a dump's pairs come sorted by customer and person.
            if not bool(np.all(key[1:] > key[:-1])):
                key = np.sort(key)
                key = key[np.concatenate(([True], key[1:] != key[:-1]))]
            c, p = key // max(1, len(people)), key % max(1, len(people))
        starts = np.flatnonzero(np.concatenate(([True], c[1:] != c[:-1]))) if c.size else c
        customers = c[starts]
        indptr = np.append(starts, c.size).astype(np.int64)
        size = np.bincount(p, minlength=len(people)).astype(np.int64)
        return cls(tuple(people), customers, indptr, p, size, int(c.size))

    def positions(self, customer_ids: npt.ArrayLike) -> IntArray:
        """Positions of the given customers in ``customers``; -1 for those nobody accessed."""
        ids = np.asarray(customer_ids, dtype=np.int64)
        pos = np.searchsorted(self.customers, ids)
        pos = np.minimum(pos, max(0, self.customers.size - 1))
        found = self.customers.size > 0
        hit = (self.customers[pos] == ids) if found else np.zeros(ids.size, dtype=bool)
        return np.where(hit, pos, -1).astype(np.int64)

    def accessors_of(self, position: int) -> IntArray:
        """People (indexes) who accessed the customer at this position."""
        return self.accessors[self.indptr[position] : self.indptr[position + 1]]

    def popularity(self, position: int) -> int:
        """How many people accessed the customer at this position."""
        return int(self.indptr[position + 1] - self.indptr[position])


@dataclass(frozen=True)
class Suspect:
    """One person and what they account for in the dump."""

    person: str
    records: tuple[int, ...]  # dump customers (ids) this person accessed
    considered: int  # dump customers still unexplained when they were scored
    expected: float  # how many of those a person with their access volume would touch by chance
    p_value: float
    adjusted_p: float  # p-value times the people who could have done it (Bonferroni), at most 1
    accessed: int  # distinct customers this person accessed in the window
    round: int  # 1 for the first suspect chosen, 0 for people only ranked
    evidence_bits: float = 0.0  # sum over records explained of -log2(chance of touching it)

    @property
    def significant(self) -> bool:
        """Below the threshold after allowing for everyone who was tested."""
        return self.adjusted_p < ALPHA and len(self.records) >= MIN_RECORDS


@dataclass(frozen=True)
class Attribution:
    """Suspects chosen one by one, the rest ranked, and the dump customers nobody explains."""

    suspects: tuple[Suspect, ...]  # chosen in order, each on what the earlier ones left
    others: tuple[Suspect, ...]  # everyone else who touched a dump customer, best first
    unexplained: tuple[int, ...]
    never_accessed: tuple[int, ...]  # dump customers no one accessed in the window
    people_tested: int

    @property
    def ranking(self) -> tuple[Suspect, ...]:
        """Chosen suspects first, then everyone else."""
        return self.suspects + self.others


def _log_tail(
    k: npt.NDArray[np.int64], n: int, mean: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    # scipy.special is imported here, not with this module: its import (0.2 s, most of it
    # scipy's array-API layer loading numpy.f2py, numpy.testing, numpy.ma and numpy.random)
    # would be paid by every command that reaches the trace's types. Not warmed in a thread
    # either: beside `trace leak`'s matching on 2 cores the thread's turns at the
    # interpreter cost matching more (+0.7 s) than scoring saved (0.26 s).
    from scipy import special  # type: ignore[import-untyped]

    p = np.clip(mean / max(1, n), 1e-300, 1.0 - 1e-12)
    # P(X >= k) for X ~ Binomial(n, p) is the regularised incomplete beta I_p(k, n - k + 1):
    # the very function scipy.stats.binom.sf evaluates (the same bits; a test holds
    # them equal), without importing scipy.stats, which cost a second of start-up.
    with np.errstate(divide="ignore"):  # a tail too small for a double is log(0) = -inf
        return np.asarray(np.log(special.betainc(k, n - k + 1, p)), dtype=np.float64)


def attribute(
    index: AccessIndex,
    dump: Collection[int],
    relevant: Mapping[int, Collection[int]] | None = None,
    max_suspects: int = MAX_SUSPECTS,
    max_others: int = 20,
) -> Attribution:
    """Rank the people who accessed the dump's customers; choose suspects round by round.

    ``relevant`` narrows, per dump customer, who counts as having accessed it
    (those who saw the leaked fields); by default everyone who accessed it.
    """
    ids = np.unique(np.fromiter(dump, dtype=np.int64, count=len(dump)))
    pos = index.positions(ids)
    never = tuple(int(c) for c in ids[pos < 0])
    weight = np.diff(index.indptr).astype(np.float64) / max(1, index.pairs)
    tested = max(1, int(np.count_nonzero(index.person_size)))
    hits = _hits(index, ids, pos, relevant)
    chosen: list[Suspect] = []
    remaining = set(int(c) for c in ids[pos >= 0])
    # Everyone scored on the whole dump: the ranking of the others, and the first round's
    # choice (scored on the same customers, so the same list but for the round number).
    ranked = _scores(index, hits, remaining, weight, ids, pos, tested, 0)
    for number in range(1, max_suspects + 1):
        if number == 1:
            best = dataclasses.replace(ranked[0], round=1) if ranked else None
        else:
            best = _best(index, hits, remaining, weight, ids, pos, tested, number)
        if best is None or not best.significant:
            break
        chosen.append(best)
        remaining -= set(best.records)
    taken = {s.person for s in chosen}
    others = tuple(s for s in ranked if s.person not in taken)[:max_others]
    return Attribution(tuple(chosen), others, tuple(sorted(remaining)), never, tested)


@dataclass(frozen=True)
class _Hits:
    """Per dump customer (a position in the sorted dump ids), the people who count as
    having accessed it: ``people[start[i] : start[i] + count[i]]``, in the index's order."""

    people: IntArray
    start: IntArray
    count: IntArray


def _ranges(start: IntArray, count: IntArray) -> IntArray:
    """The indexes start[0] .. start[0] + count[0] - 1, then those of the next range, ..."""
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(count)
    return np.repeat(start - (ends - count), count) + np.arange(total, dtype=np.int64)


def _hits(
    index: AccessIndex,
    ids: IntArray,
    pos: IntArray,
    relevant: Mapping[int, Collection[int]] | None,
) -> _Hits:
    """Per dump customer, the people who count as having accessed it.

    In arrays, not an array per customer: the dump's 255,000 person-customer pairs at
    90 days took 0.14 s one customer at a time, a set test per pair.
    """
    accessed = pos[pos >= 0]
    lo = np.zeros(ids.size, dtype=np.int64)
    count = np.zeros(ids.size, dtype=np.int64)
    lo[pos >= 0] = index.indptr[accessed]
    count[pos >= 0] = index.indptr[accessed + 1] - index.indptr[accessed]
    people = index.accessors[_ranges(lo, count)]
    if relevant is None or not relevant or people.size == 0:
        return _Hits(people, np.cumsum(count) - count, count)
    # Only a customer the mapping names is narrowed to its people; the others keep all.
    owner = np.repeat(np.arange(ids.size, dtype=np.int64), count)
    width = max(1, len(index.people))
    if isinstance(relevant, Relevant) and relevant.width == width:
        narrowed, keys, wanted = _named(ids, relevant.customers), relevant.pairs, ids[owner]
    else:
        narrowed, keys = _narrowing(ids, relevant, width)
        wanted = owner
    # A pair is kept when its person is among its customer's: (customer, person) as one key.
    wanted = wanted * width + people
    found = np.searchsorted(keys, wanted)
    found = np.minimum(found, max(0, keys.size - 1))
    member = keys[found] == wanted if keys.size else np.zeros(wanted.size, dtype=bool)
    keep = ~narrowed[owner] | member
    people = people[keep]
    count = np.bincount(owner[keep], minlength=ids.size).astype(np.int64)
    return _Hits(people, np.cumsum(count) - count, count)


def _named(ids: IntArray, named: IntArray) -> npt.NDArray[np.bool_]:
    """Which of the sorted ``ids`` are among the sorted ``named``."""
    if named.size == 0:
        return np.zeros(ids.size, dtype=bool)
    at = np.minimum(np.searchsorted(named, ids), named.size - 1)
    return np.asarray(named[at] == ids)


def _narrowing(
    ids: IntArray, relevant: Mapping[int, Collection[int]], width: int
) -> tuple[npt.NDArray[np.bool_], IntArray]:
    """Which dump customers a mapping narrows, and its pairs as sorted position * width + person."""
    named = np.fromiter(relevant.keys(), dtype=np.int64, count=len(relevant))
    sizes = np.fromiter((len(v) for v in relevant.values()), dtype=np.int64, count=len(relevant))
    allowed = np.fromiter(
        itertools.chain.from_iterable(relevant.values()), dtype=np.int64, count=int(sizes.sum())
    )
    where = np.searchsorted(ids, named)
    where = np.minimum(where, max(0, ids.size - 1))
    known = ids[where] == named if ids.size else np.zeros(named.size, dtype=bool)
    narrowed = np.zeros(ids.size, dtype=bool)
    narrowed[where[known]] = True
    allowed_owner = np.repeat(np.where(known, where, -1), sizes)
    fits = (allowed_owner >= 0) & (allowed >= 0) & (allowed < width)
    return narrowed, np.sort(allowed_owner[fits] * width + allowed[fits])  # repeats do no harm


class Relevant(dict[int, set[int]]):
    """Per dump customer, the people (indexes) who count as having accessed it, also as arrays.

    A dict like any other (customer -> people), built from the sorted pair keys
    ``customer * width + person``; scoring reads those arrays instead of the sets
    (turning 255,000 people in sets back into arrays cost 0.03 s at 90 days). Built
    once, never changed: the arrays would no longer say what the dict says.
    """

    def __init__(self, customers: IntArray, keys: IntArray, width: int) -> None:
        """``customers``: every customer named, sorted; ``keys``: the pairs, sorted, unique."""
        super().__init__()
        self.customers = customers
        self.pairs = keys
        self.width = width
        owner = keys // width
        person = (keys % width).tolist()
        starts = np.flatnonzero(np.concatenate(([True], owner[1:] != owner[:-1])))
        bounds = [*starts.tolist(), keys.size]
        self.update((int(c), set()) for c in customers.tolist())
        for k, c in enumerate(owner[starts].tolist() if keys.size else []):
            self[c] = set(person[bounds[k] : bounds[k + 1]])


def _scores(
    index: AccessIndex,
    hits: _Hits,
    remaining: Collection[int],
    weight: npt.NDArray[np.float64],
    ids: IntArray,
    pos: IntArray,
    tested: int,
    number: int,
) -> list[Suspect]:
    if not remaining:
        return []
    members = np.fromiter(remaining, dtype=np.int64)
    at = np.searchsorted(ids, members)
    where = pos[at]
    share = float(weight[where].sum())
    # Each member's people, member after member in the set's order (the order the sums
    # of evidence below add in, so the same bits as ever).
    lengths = hits.count[at]
    people = hits.people[_ranges(hits.start[at], lengths)]
    if people.size == 0:
        return []
    owners = np.repeat(members, lengths)
    owned_at = np.repeat(where, lengths)
    # A stable sort by person; numpy sorts integers of 16 bits by radix (a third of the time
    # of its merge sort on 255,000 pairs), and the order is the same either way.
    narrow = people.astype(np.int16) if len(index.people) <= np.iinfo(np.int16).max else people
    by_person = np.argsort(narrow, kind="stable")
    people, owners, owned_at = people[by_person], owners[by_person], owned_at[by_person]
    # Each person's run in the sorted array (what np.unique would sort again to find).
    starts = np.flatnonzero(np.concatenate(([True], people[1:] != people[:-1])))
    candidates = people[starts]
    k = np.diff(np.append(starts, people.size))
    n = len(members)
    mean = index.person_size[candidates].astype(np.float64) * share
    log_p = _log_tail(k.astype(np.int64), n, mean)
    # Weight of evidence: each hit counts -log2 of the chance that a person of this
    # volume touches that customer at all, so a customer few people opened counts
    # for more than one everyone serves. It orders people whose p-values tie.
    chance = np.minimum(1.0, index.person_size[people] * weight[owned_at])
    bits = np.add.reduceat(-np.log2(np.maximum(chance, 1e-300)), starts)
    order = np.lexsort((-bits, log_p))[:50]
    result = []
    for j in order.tolist():
        person = int(candidates[j])
        records = owners[starts[j] : starts[j] + k[j]]
        p_value = math.exp(float(log_p[j]))
        result.append(
            Suspect(
                person=index.people[person],
                records=tuple(sorted(set(records.tolist()))),
                considered=n,
                expected=float(mean[j]),
                p_value=p_value,
                adjusted_p=min(1.0, p_value * tested),
                accessed=int(index.person_size[person]),
                round=number,
                evidence_bits=float(bits[j]),
            )
        )
    return result


def _best(
    index: AccessIndex,
    hits: _Hits,
    remaining: Collection[int],
    weight: npt.NDArray[np.float64],
    ids: IntArray,
    pos: IntArray,
    tested: int,
    number: int,
) -> Suspect | None:
    ranked = _scores(index, hits, remaining, weight, ids, pos, tested, number)
    return ranked[0] if ranked else None


__all__ = ["ALPHA", "AccessIndex", "Attribution", "Relevant", "Suspect", "attribute"]
