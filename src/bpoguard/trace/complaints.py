"""`bpoguard trace complaints`: the common point of compromise behind a wave of fraud reports.

For every staff member, team, site, shift and channel (the purpose of the
interaction an access was made in, or none) we count how many of the victims
it accessed *before each victim's report*, and how many of the customers who
did not report it accessed in the same period. Fisher's exact test (one-sided,
as its hypergeometric tail) says how surprising that share is; the
Benjamini-Hochberg procedure corrects for testing every group at once.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from sqlalchemy import Connection, func, select

from bpoguard import duck
from bpoguard.errors import InputError
from bpoguard.store import models as m
from bpoguard.trace.firsts import (
    DAY_US,
    DIMENSIONS,
    counts_file,
    firsts_file,
    group_totals,
    rows_of,
    staff_labels,
)
from bpoguard.workspace import Workspace

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
Q_THRESHOLD = 0.05
MAX_COMPLAINTS = 1_000_000
_ID_COLUMNS = ("customer_id", "customer", "cust_id", "id")
_REF_COLUMNS = ("ref", "customer_ref", "reference", "account_ref")
_DATE_COLUMNS = ("reported_on", "reported", "report_date", "date", "date_reported")

METHOD = (
    "For each staff member, team, site, shift and channel we count the fraud victims it "
    "accessed before the day each victim reported, and the customers who did not report "
    "(of the same clients) it accessed up to the last report. If the victims were a random "
    "draw of the customers, a group would have accessed about the same share of both. "
    "Fisher's exact test gives the chance (p-value) of a group's victim count being this "
    "high by luck; because every group is tested at once, the q-value (Benjamini-Hochberg) "
    f"controls the share of false leads among those reported. Lines with q below {Q_THRESHOLD} "
    "stand out; the odds ratio says how many times likelier a victim was to have been "
    "accessed by the group than a customer who did not report."
)


class ComplaintsError(InputError):
    """A complaints file that cannot be used; the message names the line."""


@dataclass(frozen=True)
class Line:
    """One group's counts and test."""

    dimension: str
    value: str
    victims_accessed: int
    victims: int
    others_accessed: int
    others: int
    odds_ratio: float | None
    p_value: float
    q_value: float = 1.0


@dataclass
class ComplaintsTrace:
    """The ranked groups and what was read."""

    file: str
    victims: int
    others: int
    clients: tuple[str, ...]
    lines: list[Line]
    warnings: list[str] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)  # team -> staff


def read_complaints(path: Path) -> list[tuple[str, str, dt.date, int]]:
    """(kind of key, key, date reported, line) for each report; ComplaintsError naming a bad line."""
    try:
        handle = path.open(encoding="utf-8-sig", errors="replace", newline="")
    except FileNotFoundError:
        raise ComplaintsError(f"no file {path}") from None
    except OSError as exc:
        raise ComplaintsError(f"cannot read {path}: {exc.strerror or 'unreadable'}") from None
    with handle:
        sample = handle.read(64 * 1024)
        if "\x00" in sample:
            raise ComplaintsError(f"{path} is a binary file, not a CSV of complaints")
        if not sample.strip():
            raise ComplaintsError(f"{path} is empty: there are no complaints to trace")
        handle.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample.splitlines()[0], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(handle, dialect=dialect)
        header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
        key_col = next((header[c] for c in _ID_COLUMNS if c in header), None)
        kind = "id"
        if key_col is None:
            key_col, kind = next((header[c] for c in _REF_COLUMNS if c in header), None), "ref"
        date_col = next((header[c] for c in _DATE_COLUMNS if c in header), None)
        if key_col is None or date_col is None:
            raise ComplaintsError(
                f"{path}: the header needs a customer_id (or ref) column and a reported_on "
                "column (YYYY-MM-DD)"
            )
        return _rows(reader, key_col, date_col, kind)


def _rows(
    reader: csv.DictReader[str], key_col: str, date_col: str, kind: str
) -> list[tuple[str, str, dt.date, int]]:
    rows = []
    try:
        for row in reader:
            line = reader.line_num
            key = (row.get(key_col) or "").strip()
            raw = (row.get(date_col) or "").strip()
            if not key and not raw:
                continue
            if not key:
                raise ComplaintsError(f"complaints line {line}: the customer is missing")
            if kind == "id" and not key.isdigit():
                raise ComplaintsError(f"complaints line {line}: customer_id must be a number")
            try:
                reported = dt.date.fromisoformat(raw[:10])
            except ValueError:
                raise ComplaintsError(
                    f"complaints line {line}: reported_on is not a date (YYYY-MM-DD)"
                ) from None
            rows.append((kind, key, reported, line))
            if len(rows) > MAX_COMPLAINTS:
                raise ComplaintsError(f"more than {MAX_COMPLAINTS:,} complaints in one file")
    except csv.Error as exc:
        raise ComplaintsError(f"complaints line {reader.line_num}: {exc}") from None
    return rows


def _resolve(
    conn: Connection, rows: Sequence[tuple[str, str, dt.date, int]]
) -> tuple[dict[int, dt.date], dict[int, str], int]:
    """Victim -> earliest report date, victim -> client, and how many rows named nobody we hold."""
    ids = sorted({int(k) for kind, k, _, _ in rows if kind == "id"})
    refs = sorted({k for kind, k, _, _ in rows if kind == "ref"})
    client: dict[int, str] = {}
    by_ref: dict[str, int] = {}
    for start in range(0, max(len(ids), len(refs)), 500):
        if ids[start : start + 500]:
            q = select(m.Customer.id, m.Customer.client_id).where(
                m.Customer.id.in_(ids[start : start + 500])
            )
            client.update({r.id: r.client_id for r in conn.execute(q)})
        if refs[start : start + 500]:
            q2 = select(m.Customer.id, m.Customer.client_id, m.Customer.ref).where(
                m.Customer.ref.in_(refs[start : start + 500])
            )
            for r in conn.execute(q2):
                client[r.id] = r.client_id
                by_ref[r.ref] = r.id
    victims: dict[int, dt.date] = {}
    unknown = 0
    for kind, key, reported, _ in rows:
        cid = int(key) if kind == "id" else by_ref.get(key)
        if cid is None or cid not in client:
            unknown += 1
            continue
        victims[cid] = min(reported, victims.get(cid, reported))
    return victims, client, unknown


Person = tuple[str, str | None, str | None, str | None]  # staff id, team, site, shift


@dataclass(frozen=True)
class _Held:
    """What a complaints trace reads from the store, in one read transaction."""

    victims: dict[int, dt.date]
    clients: tuple[str, ...]
    sizes: list[tuple[str, int, int, int]]  # client, customers, highest id, sum of ids
    canaries: dict[int, str]  # every canary customer -> its client
    staff: list[Person]

    @property
    def universe(self) -> int:
        """Customers of the victims' clients who are not canaries: the comparison's pool."""
        held = sum(n for c, n, _, _ in self.sizes if c in self.clients)
        return held - sum(1 for c in self.canaries.values() if c in self.clients)

    @property
    def fingerprint(self) -> str:
        """What the per-group counts depend on in the customers table (see firsts.counts_file)."""
        return json.dumps([self.sizes, sorted(self.canaries)])


def _client_sizes(conn: Connection) -> list[tuple[str, int, int, int]]:
    """(client, customers, highest id, sum of ids) per client: its sizes, and a fingerprint."""
    q = (
        select(m.Customer.client_id, func.count(), func.max(m.Customer.id), func.sum(m.Customer.id))
        .group_by(m.Customer.client_id)
        .order_by(m.Customer.client_id)
    )
    return [(str(c), int(n), int(top), int(total)) for c, n, top, total in conn.execute(q)]


def _canaries(conn: Connection) -> dict[int, str]:
    q = select(m.Customer.id, m.Customer.client_id).where(m.Customer.is_canary.is_(True))
    return {int(i): str(c) for i, c in conn.execute(q)}


def _customers(conn: Connection) -> pa.Table:
    """Every customer who is not a canary, with their client, for building the per-group counts."""
    rows = conn.execute(
        select(m.Customer.id, m.Customer.client_id).where(m.Customer.is_canary.is_(False))
    ).all()
    return pa.table(
        {"id": pa.array([r[0] for r in rows], pa.int64()),
         "client": pa.array([r[1] for r in rows], pa.string())}
    )  # fmt: skip


def _staff(conn: Connection) -> list[Person]:
    rows = conn.execute(select(m.Staff.id, m.Staff.team, m.Staff.site_id, m.Staff.shift))
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def firsts_dir(ws: Workspace) -> Path:
    """Where the complaints' first accesses are kept (beside the pair summary, see firsts)."""
    return ws.home / "cache" / "trace" / "firsts"


def trace_complaints(ws: Workspace, path: Path, include_denied: bool = True) -> ComplaintsTrace:
    """Rank the groups that accessed a disproportionate share of the victims before they reported."""
    rows = read_complaints(path)
    with ws.store.engine.connect() as conn:
        victims, client_of, unknown = _resolve(conn, rows)
        clients = tuple(sorted(set(client_of[c] for c in victims)))
        warnings = []
        if unknown:
            warnings.append(f"{unknown} complaint rows name no customer we hold and were left out")
        if not victims:
            return ComplaintsTrace(path.name, 0, 0, clients, [], warnings)
        held = _Held(victims, clients, _client_sizes(conn), _canaries(conn), _staff(conn))
        # Still in the same read transaction: the counts, if built, match the fingerprint.
        lines = _rank_from_cache(ws, held, lambda: _customers(conn), include_denied)
    members: dict[str, list[str]] = {}
    for p, team, _, _ in held.staff:
        if team:
            members.setdefault(team, []).append(p)
    universe = held.universe
    return ComplaintsTrace(
        path.name, len(victims), universe - len(victims), clients, lines, warnings, members
    )


def _rank_from_cache(
    ws: Workspace, held: _Held, customers: Callable[[], pa.Table], include_denied: bool
) -> list[Line]:
    """The ranking from the firsts and the per-group counts (built in a scratch folder if need be)."""
    try:
        return _rank_in(firsts_dir(ws), ws, held, customers, include_denied)
    except OSError:
        # A read-only workspace copy: the same files, built for this trace alone.
        with tempfile.TemporaryDirectory(prefix="bpoguard-firsts-") as scratch:
            return _rank_in(Path(scratch), ws, held, customers, include_denied)


def _rank_in(
    folder: Path,
    ws: Workspace,
    held: _Held,
    customers: Callable[[], pa.Table],
    include_denied: bool,
) -> list[Line]:
    firsts = firsts_file(ws.settings.lake_dir, folder)
    if firsts is None:
        return []
    labels = staff_labels(held.staff)
    counts = counts_file(firsts, folder, labels, held.fingerprint, customers)
    cutoff_day = max(held.victims.values()).toordinal() - _EPOCH_ORDINAL
    cutoff_us = cutoff_day * DAY_US
    report_us = {c: (d.toordinal() - _EPOCH_ORDINAL) * DAY_US for c, d in held.victims.items()}
    con = duck.connect()
    try:
        apart = rows_of(con, firsts, held.victims, labels)
        times = apart.column("first_us" if include_denied else "first_allowed_us").to_pylist()
        customer = apart.column("customer_id").to_pylist()
        hits: dict[str, dict[str, set[int]]] = {}
        seen: dict[str, dict[str, set[int]]] = {}
        for dimension in DIMENSIONS:
            hit, pooled = hits.setdefault(dimension, {}), seen.setdefault(dimension, {})
            labelled = apart.column(dimension).to_pylist()
            for value, c, t in zip(labelled, customer, times, strict=True):
                if t is None or t >= cutoff_us:
                    continue
                if c not in held.canaries:  # the counts hold no canary: nor does the pool
                    pooled.setdefault(value, set()).add(c)
                if t < report_us[c]:
                    hit.setdefault(value, set()).add(c)
        wanted = [(d, v) for d in DIMENSIONS for v in hits[d]]
        totals = group_totals(con, counts, held.clients, cutoff_day, not include_denied, wanted)
    finally:
        con.close()
    tallies = []
    for dimension in DIMENSIONS:
        # The victims each group accessed, and the pool's customers less the victims among them.
        names = sorted(hits[dimension])
        a = np.array([len(hits[dimension][v]) for v in names], dtype=np.int64)
        others = [totals.get((dimension, v), 0) - len(seen[dimension].get(v, ())) for v in names]
        tallies.append((dimension, names, a, np.array(others, dtype=np.int64)))
    n_others = max(0, held.universe - sum(1 for v in held.victims if v not in held.canaries))
    return _ranked(tallies, len(held.victims), n_others)


@dataclass(frozen=True)
class Grouping:
    """Labels already encoded: ``names[codes[i]]`` is row i's group (saves re-encoding)."""

    codes: npt.NDArray[np.int64]
    names: list[str]


def rank_groups(
    groups: Mapping[str, Sequence[str] | Grouping],
    customer: npt.NDArray[np.int64],
    first_us: npt.NDArray[np.int64],
    report_us: Mapping[int, int],
    universe: npt.NDArray[np.int64],
) -> list[Line]:
    """Score every group of every dimension; rows are accesses (group per dimension, customer, first time).

    ``report_us`` gives each victim's report time; accesses of a victim count only
    before it. Customers of ``universe`` who are not victims are the comparison.
    """
    victim_ids = np.fromiter(report_us.keys(), dtype=np.int64, count=len(report_us))
    order = np.argsort(victim_ids)
    victim_ids = victim_ids[order]
    victim_report = np.fromiter(report_us.values(), dtype=np.int64, count=len(report_us))[order]
    at = np.minimum(np.searchsorted(victim_ids, customer), max(0, victim_ids.size - 1))
    is_victim = (
        victim_ids[at] == customer if victim_ids.size else np.zeros(customer.size, dtype=bool)
    )
    counts_victim = is_victim & (first_us < np.where(is_victim, victim_report[at], 0))
    in_universe = np.isin(customer, universe) & ~is_victim
    n_victims = len(report_us)
    n_others = max(0, int(universe.size) - int(np.isin(victim_ids, universe).sum()))
    tallies: list[Tally] = []
    for dimension, labels in groups.items():
        codes, names = (
            (labels.codes, labels.names) if isinstance(labels, Grouping) else _codes(labels)
        )
        a = _distinct_per_group(codes[counts_victim], customer[counts_victim], len(names))
        c = _distinct_per_group(codes[in_universe], customer[in_universe], len(names))
        hit = np.flatnonzero(a > 0)
        tallies.append((dimension, [names[g] for g in hit.tolist()], a[hit], c[hit]))
    return _ranked(tallies, n_victims, n_others)


# (dimension, the groups that accessed a victim in name order, victims each accessed, others).
Tally = tuple[str, list[str], npt.NDArray[np.int64], npt.NDArray[np.int64]]


def _ranked(tallies: Sequence[Tally], n_victims: int, n_others: int) -> list[Line]:
    """Test every group, correct for testing them all, and rank them."""
    # scipy.stats takes a second to import: only a complaints trace pays for it,
    # not every command that loads this package (trace leak among them).
    from scipy import stats  # type: ignore[import-untyped]

    lines: list[Line] = []
    for dimension, names, a, c in tallies:
        # Fisher's exact test, one-sided (more victims accessed than chance): its
        # p-value is the hypergeometric tail, computed for every group at once.
        p = stats.hypergeom.sf(a - 1, n_victims + n_others, a + c, n_victims)
        for g, p_value in enumerate(np.atleast_1d(p).tolist()):
            lines.append(
                _line(dimension, names[g], int(a[g]), n_victims, int(c[g]), n_others, p_value)
            )
    if not lines:
        return []
    q = stats.false_discovery_control([ln.p_value for ln in lines], method="bh")
    ranked = [
        Line(ln.dimension, ln.value, ln.victims_accessed, ln.victims, ln.others_accessed,
             ln.others, ln.odds_ratio, ln.p_value, float(qv))
        for ln, qv in zip(lines, q, strict=True)
    ]  # fmt: skip
    ranked.sort(key=lambda ln: (ln.p_value, -ln.victims_accessed, ln.dimension, ln.value))
    return ranked


def _codes(labels: Sequence[str]) -> tuple[npt.NDArray[np.int64], list[str]]:
    names, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


def _distinct_per_group(
    codes: npt.NDArray[np.int64], customer: npt.NDArray[np.int64], groups: int
) -> npt.NDArray[np.int64]:
    if codes.size == 0:
        return np.zeros(groups, dtype=np.int64)
    # One int64 key per (group, customer): a flat unique is far faster than unique(axis=1).
    span = int(customer.max()) + 1 if customer.size else 1
    keys = np.sort(codes * span + customer)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return np.bincount(keys // span, minlength=groups).astype(np.int64)


def _line(dimension: str, value: str, a: int, victims: int, c: int, others: int, p: float) -> Line:
    b, d = victims - a, max(0, others - c)
    odds = None if b * c == 0 else (a * d) / (b * c)
    return Line(dimension, value, a, victims, c, others, odds, min(1.0, max(0.0, float(p))))


def complaints_document(trace: ComplaintsTrace) -> dict[str, Any]:
    """The complaints report as one JSON-ready document."""
    ranking = [
        {"rank": k, "dimension": ln.dimension, "value": ln.value,
         "victims_accessed": ln.victims_accessed, "victims": ln.victims,
         "others_accessed": ln.others_accessed, "others": ln.others,
         "odds_ratio": ln.odds_ratio, "p_value": ln.p_value, "q_value": ln.q_value,
         "stands_out": ln.q_value < Q_THRESHOLD}
        for k, ln in enumerate(trace.lines[:200], start=1)
    ]  # fmt: skip
    standing = [r for r in ranking if r["stands_out"]]
    if not trace.victims:
        verdict = "None of the complaints names a customer we hold."
    elif not standing:
        verdict = (
            f"{trace.victims} victims: no staff member, team, site, shift or channel accessed "
            "more of them than chance explains."
        )
    else:
        staff = [str(r["value"]) for r in standing if r["dimension"] == "staff"]
        verdict = (
            f"{trace.victims} victims; {len(standing)} groups stand out"
            + (f", among them staff {', '.join(staff[:8])}" if staff else "")
            + "."
        )
    return {
        "kind": "complaints",
        "file": trace.file,
        "clients": list(trace.clients),
        "victims": trace.victims,
        "others": trace.others,
        "verdict": verdict,
        "warnings": trace.warnings,
        "ranking": ranking,
        "method": METHOD,
    }


__all__ = ["ComplaintsError", "ComplaintsTrace", "Grouping", "Line", "complaints_document", "firsts_dir",
           "rank_groups", "read_complaints", "trace_complaints"]  # fmt: skip
