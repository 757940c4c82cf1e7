"""`bpoguard trace leak`: from a leaked dump to ranked suspects, with the evidence behind each.

The stages are plain functions: read the dump (:mod:`.dump`), match its
records through the vault's blind indexes (:mod:`.matcher`), name the agents
any canary in it was shown to or touched by, read who accessed the matched
customers before the leak was first seen (:mod:`.accesses`), score them
(:mod:`.scoring`), and prove each access from the ledger.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, select

from bpoguard import collector
from bpoguard.guard.vault import Vault, key_status
from bpoguard.ledger import Checkpoint, Ledger
from bpoguard.ledger.verifier import parse_json
from bpoguard.store import models as m
from bpoguard.store.fast import run as _run
from bpoguard.trace.accesses import Access, access_index, accesses_of, dump_accesses
from bpoguard.trace.dump import Cells, ReadStats, read_dump
from bpoguard.trace.matcher import (
    AMBIGUOUS,
    MATCHED,
    NOTHING,
    PARTIAL_ONLY,
    Matcher,
    RecordMatch,
    clients,
)
from bpoguard.trace.recognition import DumpRecognition, recognised
from bpoguard.trace.scoring import Attribution, Suspect, attribute
from bpoguard.trace.values import Sighting
from bpoguard.workspace import Workspace

MAX_PROOFS = 200  # inclusion proofs in one report; the rest by ledger index only
MAX_RECORDS_SHOWN = 2_000  # per-record lines in one report
EVIDENCE_FOR = 5  # people whose accesses are listed one by one
CHUNK = 500

Progress = Callable[[str, int, int], None]


@dataclass
class LeakOptions:
    """How to trace: the date the dump was first seen, and whether refused requests count."""

    first_seen: dt.date | None = None
    include_denied: bool = True  # a refused request still shows who went looking
    max_records: int = 1_000_000


@dataclass
class LeakTrace:
    """Everything a leak trace found; :func:`bpoguard.trace.report.leak_document` renders it."""

    dump_name: str
    stats: ReadStats
    options: LeakOptions
    window_end: dt.datetime | None
    counts: dict[str, int]
    records: list[RecordMatch]
    refs: dict[int, tuple[str, str]]  # customer id -> (client id, ref)
    canary_hits: list[dict[str, Any]]
    attribution: Attribution
    staff: dict[str, dict[str, str | None]]
    evidence: dict[str, dict[int, list[Access]]]  # person -> customer -> accesses
    ledger: dict[str, Any] = field(default_factory=dict)
    distinct_customers: int = 0
    vault_empty: bool = False  # no customer values to match against at all
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per stage


def trace_leak(
    ws: Workspace,
    vault: Vault,
    path: Path,
    options: LeakOptions | None = None,
    progress: Progress | None = None,
    early: DumpRecognition | None = None,
) -> LeakTrace:
    """Trace a leaked dump against what this workspace holds.

    ``early`` is the dump's reading and recognition, already started in a worker by
    the caller (the command starts it before its own imports), who closes it. Without
    it the dump is read here, and each block recognised in a short-lived worker while
    the one before is matched.
    """
    options = options or LeakOptions()
    if early is not None and (early.path != path or early.max_records != options.max_records):
        raise ValueError("the dump's recognition was started for another file or record limit")
    stats = ReadStats()
    window_end = _window_end(options.first_seen)
    clock = _Clock()
    if early is None:
        # No head start to be had here (matching needs the first block at once), and a
        # worker streaming from the start measured no faster than the blocks' own
        # workers (docs/benchmarks.md, "Recognition starts first").
        blocks = recognised(read_dump(path, stats, options.max_records))
    else:
        blocks = early.blocks(stats)
    found = _match(ws, vault, blocks, progress, clock)
    # The stages after matching allocate hundreds of thousands of objects (rows, accesses,
    # the caches' names) and no cycles: full collections would walk the heap for nothing.
    with collector.paused():
        return _after_match(ws, path, options, stats, window_end, clock, found)


def _after_match(
    ws: Workspace,
    path: Path,
    options: LeakOptions,
    stats: ReadStats,
    window_end: dt.datetime | None,
    clock: _Clock,
    found: _Found,
) -> LeakTrace:
    """Who accessed the matched customers, the ranking, the evidence and its proofs."""
    lake, cache = ws.settings.lake_dir, cache_dir(ws)
    leaked = _leaked(found.kept)
    read = dump_accesses(lake, leaked, window_end, options.include_denied, cache)
    if read is None:  # the caches cannot answer: every pair, and the dump's rows, from the lake
        index = access_index(lake, window_end, options.include_denied, cache)
        details = accesses_of(lake, found.ids, window_end, options.include_denied, cache)
        relevant = _relevant(details, leaked, {name: k for k, name in enumerate(index.people)})
    else:
        index, relevant = read
    clock.lap("access index")
    attribution = attribute(index, found.ids, relevant)
    shown = attribution.ranking[:EVIDENCE_FOR]
    clock.lap("accesses")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="trace-rows") as pool:
        rows = None
        if read is not None:
            # Whole rows only for the people a report shows, on the records they explain,
            # read by DuckDB in a thread (it leaves the interpreter's lock while it scans)
            # while this one reads what does not depend on them from the database.
            wanted = {c for s in shown for c in s.records}
            rows = pool.submit(accesses_of, lake, wanted, window_end, options.include_denied,
                               cache, people={s.person for s in shown})  # fmt: skip
        with ws.store.engine.connect() as conn:
            refs, canaries = _refs(conn, found.ids)
            hits = _canary_hits(conn, canaries, refs, window_end) if canaries else []
            named = [p for h in hits for p in h["named"]]
            staff = _staff(conn, [s.person for s in attribution.ranking] + named)
        head = _head(ws)
        clock.lap("customers")
        if rows is not None:
            details = rows.result()
    clock.lap("accesses")
    evidence = _evidence(details, shown)
    clock.lap("scoring")
    ledger = _proofs(head, evidence)
    clock.lap("proofs")
    return LeakTrace(
        dump_name=path.name,
        stats=stats,
        options=options,
        window_end=window_end,
        counts=found.counts,
        records=found.kept,
        refs=refs,
        canary_hits=hits,
        attribution=attribution,
        staff=staff,
        evidence=evidence,
        ledger=ledger,
        distinct_customers=len(found.ids),
        vault_empty=found.vault_empty,
        timings=clock.laps,
    )


def cache_dir(ws: Workspace) -> Path:
    """Where the trace keeps its summary of the lake (see :mod:`bpoguard.trace.accesses`)."""
    return ws.home / "cache" / "trace"


class _Clock:
    """Wall seconds per stage, for benchmarks and the curious (never in the report)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = self.laps.get(stage, 0.0) + now - self._last
        self._last = now


_T = TypeVar("_T")


def _timed(items: Iterable[_T], clock: _Clock) -> Iterator[_T]:
    """The dump's blocks, with the time spent getting them counted apart from matching.

    "read" is waiting for the worker and unpacking what it sent (or, without it,
    reading and recognising here); "match" is everything else.
    """
    it = iter(items)
    while True:
        clock.lap("match")
        try:
            item = next(it)
        except StopIteration:
            clock.lap("read")
            return
        clock.lap("read")
        yield item


@dataclass
class _Found:
    kept: list[RecordMatch]
    counts: dict[str, int]
    ids: list[int]
    vault_empty: bool


def _match(
    ws: Workspace,
    vault: Vault,
    blocks: Iterator[tuple[list[Cells], list[Sighting]]],
    progress: Progress | None,
    clock: _Clock,
) -> _Found:
    """Match the dump's blocks as they come: the records kept, the counts and the customers found."""
    with ws.store.engine.connect() as conn:
        matcher = Matcher(conn, vault, clients(conn))
        timed = _timed(blocks, clock)
        kept = _matched(matcher.match_blocks(timed), progress)
        clock.lap("match")
        by_status = matcher.stats.by_status
        counts = {
            "records": matcher.stats.records,
            "matched": by_status[MATCHED],
            "ambiguous": by_status[AMBIGUOUS],
            "partial_only": by_status[PARTIAL_ONLY],
            "nothing_we_hold": by_status[NOTHING],
            "lookups": matcher.stats.lookups,
        }
        ids = sorted({r.customer_id for r in kept if r.customer_id is not None})
        # Counting is only worth it when nothing matched: was there anything to match?
        vault_empty = not ids and key_status(conn, vault.keys).values == 0
        clock.lap("customers")
    return _Found(kept, counts, ids, vault_empty)


def _window_end(first_seen: dt.date | None) -> dt.datetime | None:
    # "Before the first-seen date" includes that day: the copy was taken some time before it surfaced.
    if first_seen is None:
        return None
    return dt.datetime.combine(first_seen + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def _matched(records: Iterable[RecordMatch], progress: Progress | None) -> list[RecordMatch]:
    kept = []
    for n, record in enumerate(records, start=1):
        if record.status in (MATCHED, AMBIGUOUS):
            kept.append(record)
        if progress is not None and n % 500 == 0:
            progress("records", n, n)  # a stream: the count so far is all we know
    return kept


REFS_CHUNK = 5_000  # customer ids in one statement of _refs


def _refs(conn: Connection, ids: Sequence[int]) -> tuple[dict[int, tuple[str, str]], set[int]]:
    """Each customer's (client, reference), and which of them are canaries."""
    refs: dict[int, tuple[str, str]] = {}
    canaries: set[int] = set()
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(ids), REFS_CHUNK):
            # Straight to the driver, the ids as integers Python formatted (no bound
            # parameter each): through SQLAlchemy's rows, in chunks of 500, this cost
            # 2.5 times as much for a big dump's 7,500 customers.
            listed = ",".join(str(int(c)) for c in ids[start : start + REFS_CHUNK])
            sql = f"SELECT id, client_id, ref, is_canary FROM customers WHERE id IN ({listed})"  # noqa: S608
            for cid, client_id, ref, is_canary in _run(conn, cursor, sql, ()).fetchall():
                refs[int(cid)] = (str(client_id), str(ref))
                if is_canary:
                    canaries.add(int(cid))
    finally:
        cursor.close()
    return refs, canaries


def _canary_hits(
    conn: Connection,
    ids: Collection[int],
    refs: dict[int, tuple[str, str]],
    window_end: dt.datetime | None,
) -> list[dict[str, Any]]:
    """Canaries in the dump: whom each was placed with, who opened it (certain, by design)."""
    # Only a dump holding a canary (customers.is_canary, set when one is planted) needs
    # the canary module, and with it the guard's audit and lake imports (pandas through
    # pyarrow.dataset): most of a second of a command's start-up.
    from bpoguard.guard import canary

    wanted = set(ids)
    hits = []
    # Only these canaries, with their exposures: not every canary the workspace holds.
    for c in canary.list_canaries(conn, customer_ids=wanted):
        exposures = [e for e in c.exposures if window_end is None or e.at < window_end]
        touched = list(dict.fromkeys(e.staff_id for e in exposures if e.touched))
        named = list(dict.fromkeys(([c.shown_to] if c.shown_to else []) + touched))
        hits.append(
            {
                "customer_id": c.customer_id,
                "ref": refs.get(c.customer_id, (c.client_id, c.ref))[1],
                "client_id": c.client_id,
                "shown_to": c.shown_to,
                "touched_by": touched,
                "named": named,
                "exposures": [
                    {"staff_id": e.staff_id, "kind": e.kind, "at": e.at.isoformat(),
                     "allowed": e.allowed, "ledger_index": e.ledger_index}
                    for e in exposures
                ],
            }
        )  # fmt: skip
    return hits


def _leaked(kept: Sequence[RecordMatch]) -> dict[int, set[str]]:
    """Per matched customer, the fields the dump holds for them."""
    leaked: dict[int, set[str]] = {}
    for r in kept:
        if r.customer_id is not None:
            leaked.setdefault(r.customer_id, set()).update(r.fields)
    return leaked


def _relevant(
    details: Sequence[Access], leaked: dict[int, set[str]], people: dict[str, int]
) -> dict[int, set[int]]:
    """Per customer, who accessed a field the dump holds for them (the ones who could leak it)."""
    relevant: dict[int, set[int]] = {cid: set() for cid in leaked}
    for a in details:
        wanted = leaked.get(a.customer_id)
        if wanted is None or a.person not in people:
            continue
        # A search or export row may list no fields: it still handed over the record.
        if not a.fields or wanted.intersection(a.fields):
            relevant[a.customer_id].add(people[a.person])
    return relevant


def _evidence(
    details: Sequence[Access], ranked: Sequence[Suspect]
) -> dict[str, dict[int, list[Access]]]:
    wanted = {s.person: set(s.records) for s in ranked}
    evidence: dict[str, dict[int, list[Access]]] = {p: {} for p in wanted}
    for a in details:
        if a.person in wanted and a.customer_id in wanted[a.person]:
            evidence[a.person].setdefault(a.customer_id, []).append(a)
    return evidence


def _staff(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
    wanted = sorted(set(ids))
    found: dict[str, dict[str, str | None]] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = conn.execute(
            select(m.Staff.id, m.Staff.role, m.Staff.team, m.Staff.site_id, m.Staff.shift,
                   m.Staff.left).where(m.Staff.id.in_(wanted[start : start + CHUNK]))
        )  # fmt: skip
        for r in rows:
            found[r.id] = {
                "role": str(r.role.value) if r.role is not None else None,
                "team": r.team,
                "site": r.site_id,
                "shift": r.shift,
                "left": r.left.isoformat() if r.left else None,
            }
    return found


@dataclass(frozen=True)
class _Head:
    """The ledger as the proofs find it: its size and newest signed checkpoint."""

    ledger: Ledger
    size: int
    checkpoint: Checkpoint | None


def _head(ws: Workspace) -> _Head:
    ledger = Ledger.for_workspace(ws)
    return _Head(ledger, ledger.size(), ledger.latest_checkpoint())


def _proofs(head: _Head, evidence: dict[str, dict[int, list[Access]]]) -> dict[str, Any]:
    """Inclusion proofs for the accesses shown, against the newest signed checkpoint."""
    ledger, size, checkpoint = head.ledger, head.size, head.checkpoint
    tree_size = checkpoint.size if checkpoint is not None else size
    # The entries proved, in the report's order: index -> the person and customer of the
    # access that named it first (what its entry must say).
    chosen: dict[int, tuple[str, int]] = {}
    later: list[int] = []
    for person, by_customer in evidence.items():
        for customer_id, accesses in by_customer.items():
            for a in accesses:
                index = a.ledger_index
                if index is None or index in chosen:
                    continue
                if index >= tree_size:
                    later.append(index)
                    continue
                if len(chosen) >= MAX_PROOFS:
                    continue
                chosen[index] = (person, customer_id)
    # All the entries in one read and all the proofs' nodes in another (the proofs share
    # their upper nodes): 400 statements and as many connections before.
    raws = ledger.entries_bytes(chosen) if chosen else {}
    proved = ledger.inclusion_proofs(chosen, tree_size) if chosen else {}
    proofs: dict[str, Any] = {}
    disagree: list[int] = []
    for index, (person, customer_id) in chosen.items():
        raw = raws[index]
        entry = parse_json(raw)  # what Ledger.entry parses, without reading it again
        if entry.get("staff") != person or entry.get("customer") != customer_id:
            disagree.append(index)
        proofs[str(index)] = {
            "entry": raw.decode("utf-8"),  # ids, names and reasons only, by design
            "proof": proved[index].to_json(),
        }
    return {
        "tree_size": tree_size,
        "entries": size,
        "checkpoint": checkpoint.note if checkpoint is not None else None,
        "signed": checkpoint is not None,
        "verifier_key": ledger.signer.verifier_key if ledger.signer is not None else None,
        "proofs": proofs,
        "lake_rows_disagreeing_with_ledger": sorted(disagree),
        "after_checkpoint": sorted(later),
    }


__all__ = ["LeakOptions", "LeakTrace", "trace_leak"]
