"""Matching a dump's records to customers through the vault's blind indexes.

Each valid value found in a record is looked up in the vault's blind index
(an HMAC of the normalised value, compared in the index): the vault is never
decrypted to search it. Records are read in blocks; a block's values are looked
up together, per client and field, with :meth:`Vault.lookup_many` (a few
statements instead of two a value), and then each record is decided in turn
exactly as if its values had been looked up one by one. A record matches the customer most of its values
point to. Partial values (the last digits of a card or phone) never match a
record alone; they are checked, for the few customers a full value already
points to, against that one field of those customers (a block's checks read
together, :meth:`Vault.get_many`), and recorded as agreeing or not: weak
evidence that narrows a strong match.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, select

from bpoguard import collector
from bpoguard.fields import FieldType
from bpoguard.guard.vault import INDEXED, Vault
from bpoguard.store import models as m
from bpoguard.trace.dump import Cells
from bpoguard.trace.recognition import recognised
from bpoguard.trace.values import Found, Partial, Sighting, recognise

MAX_CANDIDATES = 5  # customers one record may point to before it is called ambiguous
CACHE_LIMIT = 200_000  # look-ups remembered (repeated values in a dump cost one look-up)
# After this many values in a named column, only the field types that have matched
# in it are looked up (in every client): a card column stops being tried as an
# account number. Free text (no column name) is always tried in full.
LEARN_AFTER = 200
# Named columns remembered for learning (a CSV has a few; a JSON dump of ever-new keys
# could have millions): past this, new columns are treated as free text, so memory stays
# bounded whatever the dump.
MAX_COLUMNS = 10_000

# The indexed field types by name: a field's name is looked up in C, the member's own
# hash is Python code (the hot loops below key everything by name).
_INDEXED_NAMES = frozenset(field._value_ for field in INDEXED)

MATCHED = "matched"
AMBIGUOUS = "ambiguous"
PARTIAL_ONLY = "partial only"
NOTHING = "nothing we hold"


@dataclass(frozen=True)
class Client:
    """A client whose customers the vault holds, and its country."""

    id: str
    country: str


@dataclass(slots=True)
class RecordMatch:
    """What one dump record was matched to, and on what evidence."""

    number: int
    where: str
    status: str
    customer_id: int | None = None
    client_id: str | None = None
    matched_fields: tuple[str, ...] = ()  # full values that point to the customer
    partials: tuple[tuple[str, str], ...] = ()  # (field, "agrees" | "disagrees")
    fields: tuple[str, ...] = ()  # every field type the record holds
    candidates: tuple[int, ...] = ()  # for an ambiguous record: who it could be


@dataclass
class MatchStats:
    """Counts over a whole dump."""

    records: int = 0
    values: int = 0
    lookups: int = 0
    by_status: Counter[str] = field(default_factory=Counter)


def clients(conn: Connection) -> list[Client]:
    """Every client organisation (the vault answers empty for those without keys)."""
    rows = conn.execute(
        select(m.Organisation.id, m.Organisation.country)
        .where(m.Organisation.kind == m.OrgKind.CLIENT)
        .order_by(m.Organisation.id)
    )
    return [Client(r.id, r.country) for r in rows]


class _Ranked(Protocol):
    """What a client order is sorted by: the client's id (its hits and place are by id)."""

    @property
    def id(self) -> str:
        """The client's id."""
        ...


_R = TypeVar("_R", bound=_Ranked)


class _Slot:
    """One client's answers for one field type: the search's, and the block's prefetched.

    The search and the prefetch walk clients in order many times a record; each step
    holding its client's answers saves the (client, field) key being built and hashed
    on every step (an enum member hashes in Python, not in C).
    """

    __slots__ = ("answers", "country", "fetched", "field", "id")

    def __init__(self, client: Client, field_: FieldType) -> None:
        self.id = client.id
        self.country = client.country
        self.field = field_
        # What the search has looked up (bounded by CACHE_LIMIT over all slots), and
        # what the prefetch fetched for the block being matched.
        self.answers: dict[str, Sequence[int]] = {}
        self.fetched: dict[str, Sequence[int]] = {}


# A record's search: the client its values point to, the field types pointing to each
# of that client's customers, and the customers with the most votes (in id order).
_Searched = tuple[str | None, dict[int, set[str]], list[int]]
# A value the walk asks: its canonical form, and the [steps, route, countries, field]
# of its column, field and countries (steps rebuilt when an order moves).
_Ask = tuple[str, list[Any]]


class Matcher:
    """Looks up a dump's values in the vault, record by record, remembering repeats."""

    def __init__(self, conn: Connection, vault: Vault, known: Sequence[Client]) -> None:
        self._conn = conn
        self._vault = vault
        self._clients = tuple(known)
        # Each field type's slots, one a client in the clients' own order; keyed by the
        # field's name (a str hashes in C). Answers are by slot, then value: a block's
        # values are set against what is known already without a key built a probe.
        self._slots: dict[str, list[_Slot]] = {
            field_._value_: [_Slot(client, field_) for client in self._clients]
            for field_ in INDEXED
        }
        # The same slots by client id: once a record is within a client, its later values
        # are asked of that one client, found at once instead of walked to.
        self._slot_of = {
            name: {slot.id: slot for slot in slots} for name, slots in self._slots.items()
        }
        self._cached = 0
        self._column_values: Counter[str] = Counter()
        self._column_hits: dict[str, set[str]] = {}  # a column's field types that matched
        self._client_hits: dict[tuple[str | None, str], Counter[str]] = {}
        # The clients (their slots) in the order a column and field asks them: most hits
        # first, ties in the clients' own order (what a stable sort by hits gives), kept
        # up to date as hits come rather than sorted again for every value.
        self._order: dict[tuple[str | None, str], list[_Slot]] = {}
        self._position = {client.id: n for n, client in enumerate(self._clients)}
        self.stats = MatchStats()

    def match_all(self, records: Iterable[Cells]) -> Iterator[RecordMatch]:
        """Match each record, a block at a time: the block's values looked up in batch first.

        The next block is read, and its values recognised in a worker process, while
        this block is looked up and decided: two blocks in memory at most.
        """
        return self.match_blocks(recognised(records))

    def match_blocks(
        self, blocks: Iterator[tuple[list[Cells], list[Sighting]]]
    ) -> Iterator[RecordMatch]:
        """Match blocks of records already recognised, each with its sightings in order.

        The sightings must be what :func:`~.values.recognise` gives for each record's
        cells (:func:`~.recognition.recognised` makes such blocks). Any block sizes
        give the same answers as matching one by one; the sizes it cuts keep the
        look-ups few.
        """
        while True:
            # A block's tens of thousands of small objects (cells, sightings, answers)
            # make no reference cycles (a test holds matching to that): the full
            # collections their numbers set off would only walk the whole heap (three
            # or four a 10,000-record dump at 90 days, 0.15-0.25 s).
            with collector.paused():
                item = next(blocks, None)
                if item is None:
                    return
                block, sightings = item
                # Decided whole, then handed out: the consumer's own code runs with
                # the collector on.
                decided = self._match_block(block, sightings)
            yield from decided

    def _match_block(self, block: list[Cells], sightings: list[Sighting]) -> list[RecordMatch]:
        if len(block) != len(sightings):
            raise ValueError("a block and its sightings differ in length")
        self._prefetch(sightings)
        try:
            searched = [self._search(sighting) for sighting in sightings]
        finally:
            for slots in self._slots.values():
                for slot in slots:
                    slot.fetched = {}
        # The search never reads a partial value: the block's checks are read together,
        # then each record is decided as match() decides it.
        stored = self._partial_values(sightings, searched)
        return [
            self._decided(record, sighting, found, stored)
            for record, sighting, found in zip(block, sightings, searched, strict=True)
        ]

    def _prefetch(self, sightings: Sequence[Sighting]) -> None:
        """Look up, per client and field, the values a block's records will ask about.

        The record-by-record search asks a value of the clients of its countries in
        the order its column has taught, stops at the first that knows it, and asks
        a record's later values only of that client. That search is walked here in
        rounds over the whole block: each round, every record's walk goes as far as
        the answers known allow, the first unknown of each value is queued (as if it
        were a hit, so that the record's later values are queued for that client),
        and the queue is looked up in batch, one :meth:`Vault.lookup_many` per client
        and field. A few rounds answer what the search will ask, digesting about
        half the values of asking every client of every value's countries. The
        walk is a prediction (the clients' order moves as hits come); anything it
        did not fetch is looked up singly by the search, so answers never depend on it.
        """
        # Columns past LEARN_AFTER look up only the field types that matched in them,
        # and that set cannot grow any more (nothing else is looked up there).
        learned = {
            column: self._column_hits.get(column, set())
            for column, n in self._column_values.items()
            if n > LEARN_AFTER
        }
        # Each (column, field, countries) once: [its steps, its route, its countries,
        # its field], the steps (the slots of its countries in its column's order)
        # built when first needed and again after an order has moved.
        kinds: dict[tuple[str | None, str, tuple[str, ...]], list[Any]] = {}
        # Each record's walk: [its asks, where the last round first waited, the client
        # the record was within there]. While no client order changes, a round's walk
        # takes up where the last one first waited: what came before was walked over
        # answers already known, with the same steps, and would go the same way again.
        walks: list[list[Any]] = []
        indexed = _INDEXED_NAMES
        for sighting in sightings:
            wanted: list[_Ask] = []
            for found in sighting.found:  # strongest first, as the search walks them
                name = found.field._value_
                column = found.column
                if name not in indexed or (column in learned and name not in learned[column]):
                    continue
                countries = found.countries
                kind = kinds.get((column, name, countries))
                if kind is None:
                    kind = kinds[(column, name, countries)] = [
                        None,
                        (column, name),
                        countries,
                        name,
                    ]
                wanted.append((found.canonical, kind))
            if wanted:
                walks.append([wanted, 0, None])
        # The clients in the order each column and field will ask them, kept up to date
        # with the hits of the rounds: the search's own order as of the block's start,
        # then sorted by hits as :meth:`_promote` keeps it.
        seen = {route: Counter(hits) for route, hits in self._client_hits.items()}
        orders = {route: list(order) for route, order in self._order.items()}
        slots, position, slot_of = self._slots, self._position, self._slot_of
        while walks:
            queue: defaultdict[_Slot, set[str]] = defaultdict(set)
            asked: list[tuple[_Slot, str, tuple[str | None, str]]] = []
            unfinished: list[list[Any]] = []
            for walk in walks:
                asks, at, within = walk
                waiting = False
                for i, (canonical, kind) in enumerate(asks[at:] if at else asks, at):
                    if within is not None:  # that client alone, if of the value's countries
                        slot = slot_of[kind[3]][within]
                        if slot.country not in kind[2]:
                            continue
                        if slot.fetched.get(canonical) is None and canonical not in slot.answers:
                            queue[slot].add(canonical)
                            asked.append((slot, canonical, kind[1]))
                            if not waiting:
                                waiting = True
                                walk[1], walk[2] = i, within
                        continue
                    steps: list[_Slot] | None = kind[0]
                    if steps is None:
                        countries = kind[2]
                        steps = kind[0] = [
                            slot
                            for slot in orders.get(kind[1], slots[kind[3]])
                            if slot.country in countries
                        ]
                    for slot in steps:  # not yet within a client: the first that knows it
                        # This block's answers first: most of a dump's values are new.
                        ids = slot.fetched.get(canonical)
                        if ids is None:
                            ids = slot.answers.get(canonical)
                            if ids is None:  # queued, and taken as a hit for what follows
                                queue[slot].add(canonical)
                                asked.append((slot, canonical, kind[1]))
                                if not waiting:
                                    waiting = True
                                    walk[1], walk[2] = i, within
                                within = slot.id
                                break
                        if not ids:
                            continue
                        within = slot.id  # a hit
                        break
                if waiting:
                    unfinished.append(walk)
            for slot, values in queue.items():
                answers = self._vault.lookup_many(
                    self._conn,
                    slot.id,
                    slot.field,
                    values,  # in any order: each is answered alone
                    slot.country,
                    normalised=True,  # validate()'s canonical forms for this client's country
                )
                fetched = slot.fetched
                fetched.update(answers)
                if len(answers) < len(values):  # a value lookup_many left out is no customer's
                    for value in values:
                        fetched.setdefault(value, ())
            # The hits move the clients they came from up each column's order.
            moved: set[tuple[str | None, str]] = set()
            for slot, value, route in asked:
                if slot.fetched[value]:
                    counted = seen.get(route)
                    if counted is None:  # not setdefault: a Counter built for every hit
                        counted = seen[route] = Counter()
                    counted[slot.id] += 1
                    moved.add(route)
            changed = False
            for route in moved:
                hits = seen[route]
                before = orders.get(route, slots[route[1]])
                orders[route] = after = sorted(before, key=lambda s: (-hits[s.id], position[s.id]))
                changed = changed or after != before
            if changed:  # every walk again from its start, over the new steps
                for kind in kinds.values():
                    kind[0] = None
                for walk in unfinished:
                    walk[1], walk[2] = 0, None
            walks = unfinished

    def match(self, record: Cells, sighting: Sighting | None = None) -> RecordMatch:
        """Match one record to a customer, or say why it cannot be."""
        if sighting is None:
            sighting = recognise(record.cells)
        return self._decided(record, sighting, self._search(sighting), None)

    def _search(self, sighting: Sighting) -> _Searched:
        """Look a record's values up as the search goes: the client, the votes, the best."""
        self.stats.records += 1
        self.stats.values += len(sighting.found)
        # The full values' field types by the customer they point to; a customer's
        # votes are how many field types point to it.
        fields_of: dict[int, set[str]] = {}
        within: str | None = None
        # Rarest, most specific values first; once one matches, the record is a customer
        # of that client, and its other values are looked up there alone (so every
        # customer voted for is that one client's).
        for found in sighting.found:  # recognise() put them in that order
            hit = self._hits(found, within)
            if hit is None:
                continue
            within, ids = hit
            name = found.field._value_
            for customer_id in ids:
                named = fields_of.get(customer_id)
                if named is None:
                    fields_of[customer_id] = {name}
                else:
                    named.add(name)
        if len(fields_of) < 2:
            return within, fields_of, list(fields_of)
        top = max(map(len, fields_of.values()))
        return within, fields_of, sorted(k for k, named in fields_of.items() if len(named) == top)

    def _partial_values(
        self, sightings: list[Sighting], searched: list[_Searched]
    ) -> dict[int, dict[FieldType, str]]:
        """The fields a block's partial values are checked against, for every candidate.

        One batched read (:meth:`Vault.get_many`) of the few fields of the few
        customers a full value already points to (those :meth:`_decided` checks):
        never a search, and a few statements instead of one a candidate.
        """
        wanted: set[FieldType] = set()
        customers: list[int] = []
        for sighting, (_, _, best) in zip(sightings, searched, strict=True):
            if best and sighting.partials:
                wanted.update(p.field for p in sighting.partials)
                customers.extend(best[:MAX_CANDIDATES])
        if not customers:
            return {}
        fields = sorted(wanted, key=lambda f: f.value)
        return self._vault.get_many(self._conn, customers, fields)

    def _decided(
        self,
        record: Cells,
        sighting: Sighting,
        searched: _Searched,
        stored: dict[int, dict[FieldType, str]] | None,
    ) -> RecordMatch:
        """Decide a record searched: ``stored`` holds its candidates' partial fields, if read."""
        client_id, fields_of, best = searched
        partials = sighting.partials
        present = {f._value_ for f in sighting.fields}
        result = RecordMatch(record.number, record.where, NOTHING, fields=tuple(sorted(present)))
        if not best:
            if partials:
                result.status = PARTIAL_ONLY
        else:
            checks: dict[int, tuple[tuple[str, str], ...]] = {}
            if partials:  # without partials every check is empty, and decides nothing
                checks = {
                    key: self._check_partials(key, partials, stored)
                    for key in best[:MAX_CANDIDATES]
                }
                if len(best) > 1:
                    # Partials narrow a tie: keep the candidates no partial contradicts.
                    agreeing = [
                        k for k in best if k in checks and all(v == "agrees" for _, v in checks[k])
                    ]
                    if len(agreeing) == 1:
                        best = agreeing
            if len(best) > 1:
                result.status = AMBIGUOUS
                result.candidates = tuple(best[:MAX_CANDIDATES])
            else:
                key = best[0]
                matched = fields_of[key]
                result.status = MATCHED
                result.client_id, result.customer_id = client_id, key
                result.matched_fields = tuple(sorted(matched))
                result.partials = checks.get(key, ())
                result.fields = tuple(sorted(present | matched))
        self.stats.by_status[result.status] += 1
        return result

    def _hits(self, found: Found, within: str | None = None) -> tuple[str, Sequence[int]] | None:
        """The first client (of ``within`` alone, once known) whose customers hold the value."""
        name = found.field._value_
        if name not in _INDEXED_NAMES:
            return None
        column = found.column
        if column is not None:
            counts = self._column_values
            n = counts.get(column, 0)
            if n == 0 and len(counts) >= MAX_COLUMNS:
                column = None  # a dump of endless distinct keys: learn nothing more from them
            else:
                counts[column] = n = n + 1
                if n > LEARN_AFTER and name not in self._column_hits.get(column, ()):
                    return None
        # Clients whose customers this column has matched before are asked first, and
        # the first client that knows the value ends the search: a value is one person's.
        route = (column, name)
        order = self._order.get(route)
        if order is None:
            order = self._order[route] = list(self._slots[name])
        countries, canonical = found.countries, found.canonical
        # Within a client, that client alone (found at once, not walked to in the order).
        for slot in order if within is None else (self._slot_of[name][within],):
            if slot.country not in countries:
                continue
            answers = slot.answers
            ids = answers.get(canonical)
            if ids is None:
                self.stats.lookups += 1
                ids = slot.fetched.get(canonical)
                if ids is None:
                    ids = tuple(
                        self._vault.lookup(self._conn, slot.id, slot.field, canonical, slot.country)
                    )
                if self._cached < CACHE_LIMIT:
                    answers[canonical] = ids
                    self._cached += 1
            if not ids:
                continue
            if column is not None:
                matched = self._column_hits.get(column)
                if matched is None:
                    self._column_hits[column] = {name}
                else:
                    matched.add(name)
            seen = self._client_hits.get(route)
            if seen is None:
                seen = self._client_hits[route] = Counter()
            seen[slot.id] += 1
            if order[0] is not slot:  # the first already: no one to overtake
                self._promote(order, seen, slot)  # after the loop: the search ends here
            return slot.id, ids
        return None

    def _promote(self, order: list[_R], seen: Counter[str], client: _R) -> None:
        """Move a client that has just had one more hit ahead of those it now outranks.

        The list stays sorted by (most hits, the clients' own order): one more hit
        can only move a client forward, past neighbours with fewer hits, or as many
        and a later place in the clients' order.
        """
        at = order.index(client)
        count, place = seen[client.id], self._position[client.id]
        while at > 0:
            ahead = order[at - 1]
            if (seen[ahead.id], -self._position[ahead.id]) >= (count, -place):
                break
            order[at - 1], order[at] = client, ahead
            at -= 1

    def _check_partials(
        self,
        customer_id: int,
        partials: list[Partial],
        stored: dict[int, dict[FieldType, str]] | None = None,
    ) -> tuple[tuple[str, str], ...]:
        if not partials:
            return ()
        if stored is not None and customer_id in stored:
            values = stored[customer_id]
        else:
            wanted = sorted({p.field for p in partials}, key=lambda f: f.value)
            # One field of one customer a full value already points to: never a search.
            values = self._vault.get(self._conn, customer_id, wanted)
        checked = []
        for partial in partials:
            value = values.get(partial.field, "")
            digits = "".join(ch for ch in value if ch.isdigit())
            verdict = "agrees" if digits and digits.endswith(partial.suffix) else "disagrees"
            checked.append((partial.field.value, verdict))
        return tuple(checked)


__all__ = [
    "AMBIGUOUS",
    "MATCHED",
    "NOTHING",
    "PARTIAL_ONLY",
    "Client",
    "MatchStats",
    "Matcher",
    "RecordMatch",
    "clients",
]
