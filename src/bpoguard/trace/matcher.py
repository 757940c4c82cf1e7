"""Matching a dump's records to customers through the vault's blind indexes.

Each valid value found in a record is looked up in the vault's blind index
(an HMAC of the normalised value, compared in the index): the vault is never
decrypted to search it. Records are read in blocks; a block's values are looked
up together, per client and field, with :meth:`Vault.lookup_many` (a few
statements instead of two a value), and then each record is decided in turn
exactly as if its values had been looked up one by one. A record matches the customer most of its values
point to. Partial values (the last digits of a card or phone) never match a
record alone; they are checked, for the few customers a full value already
points to, against that one field of those customers (:meth:`Vault.get`),
and recorded as agreeing or not: weak evidence that narrows a strong match.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

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

_NONE: dict[str, tuple[int, ...]] = {}  # nothing prefetched for a client and field
_Step = tuple[str, tuple[str, FieldType]]  # a client, and its (client, field) key
_NAMES = {field: field.value for field in FieldType}  # a plain dict beats Enum.value

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


class Matcher:
    """Looks up a dump's values in the vault, record by record, remembering repeats."""

    def __init__(self, conn: Connection, vault: Vault, known: Sequence[Client]) -> None:
        self._conn = conn
        self._vault = vault
        self._clients = tuple(known)
        self._in_country: defaultdict[str, list[str]] = defaultdict(list)
        for client in self._clients:
            self._in_country[client.country].append(client.id)
        # Answers by (client, field), then value: a block's values are set against
        # what is known already in one set difference, not one probe a value.
        self._cache: defaultdict[tuple[str, FieldType], dict[str, tuple[int, ...]]] = defaultdict(
            dict
        )
        self._cached = 0
        self._column_values: Counter[str] = Counter()
        self._column_hits: dict[str, set[FieldType]] = {}
        self._client_hits: defaultdict[tuple[str | None, FieldType], Counter[str]] = defaultdict(
            Counter
        )
        # The clients in the order a column and field asks them: most hits first, ties
        # in the clients' own order (what a stable sort by hits gives), kept up to date
        # as hits come rather than sorted again for every value.
        self._order: dict[tuple[str | None, FieldType], list[Client]] = {}
        self._position = {client.id: n for n, client in enumerate(self._clients)}
        self._country_of = {client.id: client.country for client in self._clients}
        # Answers fetched in batch for the block being matched; consulted where a
        # single look-up would otherwise be made, so the decisions do not change.
        self._prefetched: dict[tuple[str, FieldType], dict[str, tuple[int, ...]]] = {}
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
                decided = list(self._match_block(list(zip(block, sightings, strict=True))))
            yield from decided

    def _match_block(self, block: list[tuple[Cells, Sighting]]) -> Iterator[RecordMatch]:
        self._prefetch([s for _, s in block])
        try:
            for record, sighting in block:
                yield self.match(record, sighting)
        finally:
            self._prefetched = {}

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
        walks: list[list[Found]] = []
        for sighting in sightings:
            wanted = [
                found
                for found in sighting.found
                if found.field in INDEXED
                and (found.column not in learned or found.field in learned[found.column])
            ]
            if wanted:  # strongest first, as match() walks them
                walks.append(wanted)
        # The clients in the order each column and field will ask them, kept up to date
        # with the hits of the rounds: the search's own order as of the block's start,
        # then sorted by hits as :meth:`_promote` keeps it.
        seen = {key: Counter(hits) for key, hits in self._client_hits.items()}
        orders = {key: list(order) for key, order in self._order.items()}
        default = list(self._clients)
        cache, prefetched = self._cache, self._prefetched
        # Each value's steps: the (client, cache key) pairs of its countries, in its
        # column's order; built once a round for each column, field and countries.
        steps_of: dict[tuple[str | None, FieldType, tuple[str, ...]], list[_Step]] = {}
        while walks:
            queue: defaultdict[tuple[str, FieldType], set[str]] = defaultdict(set)
            asked: list[tuple[str, FieldType, str, tuple[str | None, FieldType]]] = []
            unfinished: list[list[Found]] = []
            for walk in walks:
                within: str | None = None
                waiting = False
                for field_, canonical, countries, column in walk:
                    steps = steps_of.get((column, field_, countries))
                    if steps is None:
                        steps = steps_of[(column, field_, countries)] = [
                            (client.id, (client.id, field_))
                            for client in orders.get((column, field_), default)
                            if client.country in countries
                        ]
                    for client_id, key in steps:
                        if within is not None and client_id != within:
                            continue
                        known = cache.get(key)
                        ids = known.get(canonical) if known is not None else None
                        if ids is None:
                            ids = prefetched.get(key, _NONE).get(canonical)
                        if ids is None:
                            queue[key].add(canonical)
                            asked.append((client_id, field_, canonical, (column, field_)))
                            waiting = True
                        elif not ids:
                            continue
                        within = within or client_id  # a hit, or what is queued taken as one
                        break
                if waiting:
                    unfinished.append(walk)
            for (client_id, field_), values in queue.items():
                answers = self._vault.lookup_many(
                    self._conn,
                    client_id,
                    field_,
                    values,  # in any order: each is answered alone
                    self._country_of[client_id],
                    normalised=True,  # validate()'s canonical forms for this client's country
                )
                got = prefetched.setdefault((client_id, field_), {})
                for value in values:  # a value lookup_many left out is no customer's
                    customers = answers.get(value)
                    got[value] = tuple(customers) if customers else ()
            # The hits move the clients they came from up each column's order.
            moved: set[tuple[str | None, FieldType]] = set()
            for client_id, field_, value, route in asked:
                if prefetched[(client_id, field_)][value]:
                    counted = seen.get(route)
                    if counted is None:  # not setdefault: a Counter built for every hit
                        counted = seen[route] = Counter()
                    counted[client_id] += 1
                    moved.add(route)
            for route in moved:
                hits = seen[route]
                orders[route] = sorted(
                    orders.get(route, default), key=lambda c: (-hits[c.id], self._position[c.id])
                )
            if moved:
                steps_of.clear()
            walks = unfinished

    def match(self, record: Cells, sighting: Sighting | None = None) -> RecordMatch:
        """Match one record to a customer, or say why it cannot be."""
        if sighting is None:
            sighting = recognise(record.cells)
        self.stats.records += 1
        self.stats.values += len(sighting.found)
        # The full values' field types by the customer they point to; a customer's
        # votes are how many field types point to it.
        fields_of: dict[tuple[str, int], set[str]] = {}
        within: set[str] | None = None
        # Rarest, most specific values first; once one matches, the record is a customer
        # of that client, and its other values are looked up there alone.
        for found in sighting.found:  # recognise() put them in that order
            hits = self._hits(found, within)
            if not hits:
                continue
            if within is None:
                within = {client_id for client_id, _ in hits}
            name = _NAMES[found.field]
            for key in hits:
                named = fields_of.get(key)
                if named is None:
                    fields_of[key] = {name}
                else:
                    named.add(name)
        present = {_NAMES[f] for f in sighting.fields}
        result = self._decide(record, fields_of, sighting.partials, present)
        self.stats.by_status[result.status] += 1
        return result

    def _decide(
        self,
        record: Cells,
        fields_of: dict[tuple[str, int], set[str]],
        partials: list[Partial],
        present: set[str],
    ) -> RecordMatch:
        base = RecordMatch(record.number, record.where, NOTHING, fields=tuple(sorted(present)))
        if not fields_of:
            if partials:
                base.status = PARTIAL_ONLY
            return base
        top = max(map(len, fields_of.values()))
        best = sorted(key for key, named in fields_of.items() if len(named) == top)
        checks = {key: self._check_partials(key[1], partials) for key in best[:MAX_CANDIDATES]}
        if len(best) > 1:
            # Partials narrow a tie: keep the candidates no partial contradicts.
            agreeing = [k for k in best if k in checks and all(v == "agrees" for _, v in checks[k])]
            if partials and len(agreeing) == 1:
                best = agreeing
        if len(best) > 1:
            base.status = AMBIGUOUS
            base.candidates = tuple(k[1] for k in best[:MAX_CANDIDATES])
            return base
        key = best[0]
        matched = fields_of[key]
        base.status = MATCHED
        base.client_id, base.customer_id = key
        base.matched_fields = tuple(sorted(matched))
        base.partials = checks.get(key, ())
        base.fields = tuple(sorted(present | matched))
        return base

    def _hits(self, found: Found, within: set[str] | None = None) -> list[tuple[str, int]]:
        field_ = found.field
        if field_ not in INDEXED:
            return []
        column = found.column
        if column is not None:
            counts = self._column_values
            n = counts.get(column, 0)
            if n == 0 and len(counts) >= MAX_COLUMNS:
                column = None  # a dump of endless distinct keys: learn nothing more from them
            else:
                counts[column] = n = n + 1
                if n > LEARN_AFTER and field_ not in self._column_hits.get(column, ()):
                    return []
        # Clients whose customers this column has matched before are asked first, and
        # the first client that knows the value ends the search: a value is one person's.
        route = (column, field_)
        order = self._order.get(route)
        if order is None:
            order = self._order[route] = list(self._clients)
        countries, canonical = found.countries, found.canonical
        for client in order:
            client_id = client.id
            if client.country not in countries or (within and client_id not in within):
                continue
            key = (client_id, field_)
            cached = self._cache[key]
            ids = cached.get(canonical)
            if ids is None:
                self.stats.lookups += 1
                ids = self._prefetched.get(key, _NONE).get(canonical)
                if ids is None:
                    ids = tuple(
                        self._vault.lookup(self._conn, client_id, field_, canonical, client.country)
                    )
                if self._cached < CACHE_LIMIT:
                    cached[canonical] = ids
                    self._cached += 1
            if not ids:
                continue
            if column is not None:
                self._column_hits.setdefault(column, set()).add(field_)
            seen = self._client_hits[route]
            seen[client_id] += 1
            self._promote(order, seen, client)  # after the loop: the search ends here
            return [(client_id, i) for i in ids]
        return []

    def _promote(self, order: list[Client], seen: Counter[str], client: Client) -> None:
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
        self, customer_id: int, partials: list[Partial]
    ) -> tuple[tuple[str, str], ...]:
        if not partials:
            return ()
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
