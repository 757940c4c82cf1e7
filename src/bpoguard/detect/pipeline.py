"""`bpoguard detect`: features, detectors, alerts and risk, recomputed only where new.

A watermark (every lake file's size and time, in ``detect_state``) says which
days new events touched; features are recomputed from the earliest such day
on (history-dependent features such as "device never used before" need the
days after it too) and the rest come from the cached feature table
(``HOME/detect/features.parquet``, written whole). Detectors then run over the
whole table, which is small (people x days), and alerts are upserted so that
their status survives.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis  # type: ignore[import-untyped]
import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
from ibis import _
from sqlalchemy import Connection, delete, insert, select

from bpoguard.detect import alerts, anomaly, detectors, risk
from bpoguard.detect._tables import detect_risk, detect_state
from bpoguard.detect.engine import DuckDBEngine, Engine, check_engine, open_engine
from bpoguard.detect.features import FEATURE_SCHEMA, FeatureSpec, collect
from bpoguard.detect.findings import Finding
from bpoguard.detect.lakefiles import fingerprint, lake_files, touched_days
from bpoguard.detect.people import Directory, directory_for
from bpoguard.detect.rules import RuleSet
from bpoguard.detect.rules import load as load_rules
from bpoguard.workspace import Workspace

Progress = Callable[[str, int, int], None]
FEATURES_FILE = "features.parquet"
RULES_FILE = "rules.toml"
SPILL_DIR = "spill"  # where DuckDB writes what does not fit its memory limit


@dataclass
class DetectSummary:
    """What one run did."""

    engine: str
    lake_files: int
    days_recomputed: int
    person_days: int
    findings: int
    suppressed: int
    alerts_total: int
    alerts_new: int
    persons: int
    up_to_date: bool = False
    expired_allow: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The summary as a JSON document."""
        return dict(self.__dict__)


def detect_dir(ws: Workspace) -> Path:
    """Where detection keeps its feature cache and the default rule file."""
    return ws.home / "detect"


def run(
    ws: Workspace,
    engine: str = "duckdb",
    spark_master: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    rules_path: Path | None = None,
    progress: Progress | None = None,
    today: dt.date | None = None,
    directory: Directory | None = None,
) -> DetectSummary:
    """Run detection over the workspace's lake; only new days' features are recomputed.

    ``directory`` replaces the store's people and premises (for data from elsewhere).
    """
    report = progress or (lambda stage, done, total: None)
    check_engine(engine, spark_master)
    ruleset = _rules(ws, rules_path)
    lake = ws.settings.lake_dir
    files = lake_files(lake)
    marks = fingerprint(files)
    cache = detect_dir(ws) / FEATURES_FILE
    with ws.store.engine.connect() as conn:
        before = _state(conn)
        directory = directory or directory_for(conn, lake)
    touched = touched_days(before, marks)
    cached = _read_cache(cache) if cache.exists() else None
    if cached is None:
        start = None
    elif since is not None:
        start = since
    elif touched:
        start = min(touched)
    else:
        start = dt.date.max  # nothing new: the cache is the answer
    report("features", 0, 1)
    spill = detect_dir(ws) / SPILL_DIR
    table = _features(engine, spark_master, files, directory, ruleset, start, cached, spill)
    report("features", 1, 1)
    _write_cache(cache, table)
    frame_table = (
        table if until is None else table.filter(pa.compute.less_equal(table["day"], until))
    )
    recomputed = (
        0
        if start == dt.date.max
        else len({d for d in table.column("day").to_pylist() if start is None or d >= start})
    )
    as_of = today or dt.datetime.now(dt.UTC).date()
    report("detectors", 0, 1)
    found, suppressed, persons = _detect(frame_table, directory, ruleset, as_of)
    report("detectors", 1, 1)
    with ws.store.engine.begin() as conn:
        before_count = alerts.count(conn)
        _store_alerts(conn, found, files, directory)
        after_count = alerts.count(conn)
        last_day = max(table.column("day").to_pylist(), default=as_of)
        risks = risk.score(risk.to_people(found, directory), persons, last_day)
        _store_risk(conn, risks)
        _save_state(conn, marks)
    return DetectSummary(
        engine=engine,
        lake_files=len(files),
        days_recomputed=recomputed,
        person_days=frame_table.num_rows,
        findings=len(found),
        suppressed=suppressed,
        alerts_total=after_count,
        alerts_new=after_count - before_count,
        persons=len(persons),
        up_to_date=start == dt.date.max,
        expired_allow=[
            f"{a.person}/{a.detector} (expired {a.expires})" for a in ruleset.expired(as_of)
        ],
    )


def _rules(ws: Workspace, path: Path | None) -> RuleSet:
    if path is not None:
        return load_rules(path)
    default = detect_dir(ws) / RULES_FILE
    return load_rules(default) if default.exists() else RuleSet()


def _features(
    engine_name: str,
    spark_master: str | None,
    files: list[Path],
    directory: Directory,
    ruleset: RuleSet,
    start: dt.date | None,
    cached: pa.Table | None,
    spill_dir: Path | None = None,
) -> pa.Table:
    if not files:
        return FEATURE_SCHEMA.empty_table()
    if start == dt.date.max and cached is not None:
        return cached
    engine: Engine = open_engine(engine_name, spark_master, spill_dir)
    try:
        events = engine.read_parquet(files)
        spec = FeatureSpec(directory=directory, domains=ruleset.domains, since=start)
        fresh = collect(engine, events, spec)
    finally:
        engine.close()
    if cached is None or start is None:
        return fresh
    kept = cached.filter(pa.compute.less(cached["day"], start))
    return pa.concat_tables([kept, fresh]).sort_by([("person", "ascending"), ("day", "ascending")])


def _detect(
    table: pa.Table, directory: Directory, ruleset: RuleSet, as_of: dt.date
) -> tuple[list[Finding], int, list[str]]:
    data = table.to_pandas()
    accounts = {a for a, _ in directory.holders}
    # unique() first: iterating the 430,000-row Arrow-backed column took seconds.
    persons = sorted({p.person for p in directory.people} | set(data["person"].unique()) - accounts)
    if data.empty:
        return [], 0, persons
    data["day"] = pd.to_datetime(data["day"])
    frame = detectors.Frame.of(data, directory)
    found = detectors.run(frame, ruleset.detectors)
    found += anomaly.robust(frame) + anomaly.forest(frame)
    kept, suppressed = ruleset.suppress(found, as_of)
    return kept, suppressed, persons


# Which of the person's events on an alert's days are its evidence, by kind of detector.
_MOVES = ("file.", "device.", "email.", "web.", "record.export", "record.")
_EVIDENCE_KIND: dict[str, str] = {
    "canary-touched": "canary",
    "reveal-without-interaction": "reveal_no_interaction",
    "bulk-harvest": "record",
    "reveal-surge": "reveal",
    "mailbox-takeover": "account",
    "concurrent-use": "session",
    "off-premises": "address",
}
_DEFAULT_KIND = "moves"  # any other detector: data moved, or customer records requested


def _evidence_kinds(t: ibis.Table) -> dict[str, ibis.Value]:
    """Each kind of evidence as a condition on a lake event."""
    action = t.action
    return {
        "canary": t.canary.fill_null(False),
        "reveal_no_interaction": (action == "record.reveal") & t.interaction_id.isnull(),
        "record": action.startswith("record."),
        "reveal": action == "record.reveal",
        "account": ibis.or_(*[action.startswith(p) for p in ("mailbox.", "account.", "auth.")]),
        "session": ibis.or_(*[action.startswith(p) for p in ("mailbox.", "auth.")]),
        "address": t.src_ip.notnull(),
        "moves": ibis.or_(*[action.startswith(p) for p in _MOVES]),
    }


def _store_alerts(
    conn: Connection, found: list[Finding], files: list[Path], directory: Directory
) -> None:
    episodes = alerts.fold(alerts.episodes(found))
    wanted = {(e.person, d, _kind(e)) for e in episodes for d in _days(e)}
    events = _evidence_events(files, wanted)
    now = dt.datetime.now(dt.UTC)
    items = []
    for episode in episodes:
        kind = _kind(episode)
        # A day's events are in time order, and days are: the first MAX_EVIDENCE of the
        # episode are the first of its days' lists put end to end.
        evidence: list[tuple[str, int | None, dt.datetime]] = []
        for day in _days(episode):
            evidence += events.get((episode.person, day, kind), [])
            if len(evidence) >= alerts.MAX_EVIDENCE:
                break
        items.append((episode, evidence[: alerts.MAX_EVIDENCE]))
    # One batch: an upsert per alert cost four statements each (29 s for 2,522 at 30 M).
    alerts.upsert_many(conn, items, now)


def _kind(episode: alerts.Episode) -> str:
    return _EVIDENCE_KIND.get(episode.detector.id, _DEFAULT_KIND)


def _days(episode: alerts.Episode) -> list[dt.date]:
    return sorted({f.day for f in episode.findings})


Evidence = dict[tuple[str, dt.date, str], list[tuple[str, int | None, dt.datetime]]]


def _evidence_events(files: list[Path], wanted: set[tuple[str, dt.date, str]]) -> Evidence:
    """The first MAX_EVIDENCE events of each (person, day, kind), in time order.

    DuckDB joins the lake with the wanted triples and ranks within each, so only
    what can be linked leaves it: an earlier version loaded every event of every
    alerted person and day into pandas, most of the lake at 30 M events.
    """
    days = {d.isoformat() for _, d, _ in wanted}
    paths = [f for f in files if f.parent.name.removeprefix("day=") in days]
    if not paths:
        return {}
    epoch = dt.date(1970, 1, 1)
    keys = pa.table(
        {
            "w_person": [p for p, _, _ in wanted],
            "w_day": [d for _, d, _ in wanted],
            "w_eday": [(d - epoch).days for _, d, _ in wanted],
            "w_kind": [k for _, _, k in wanted],
        },
        schema=pa.schema(
            [
                ("w_person", pa.string()),
                ("w_day", pa.date32()),
                ("w_eday", pa.int64()),
                ("w_kind", pa.string()),
            ]
        ),
    )
    engine = DuckDBEngine()
    try:
        lake = engine.read_parquet(paths)
        # The day as an epoch integer: a calendar cast of every event's timestamp is
        # what made the feature query slow (see features.daily).
        t = lake.select(
            "event_id", "time", "actor", "action", "canary", "interaction_id", "src_ip",
            "ledger_index", eday=engine.epoch_seconds(lake.time) // 86400,
        )  # fmt: skip
        w = engine.table(keys)
        j = t.join(w, [t.actor == w.w_person, t.eday == w.w_eday])
        kinds = _evidence_kinds(j)
        j = j.filter(ibis.cases(*[(j.w_kind == k, c) for k, c in kinds.items()], else_=False))
        order = ibis.row_number().over(
            group_by=[j.w_person, j.w_day, j.w_kind], order_by=[j.time, j.event_id]
        )
        j = j.mutate(rank=order).filter(_.rank < alerts.MAX_EVIDENCE)
        rows = engine.to_arrow(
            j.select("w_person", "w_day", "w_kind", "event_id", "ledger_index", "time").order_by(
                ["w_person", "w_day", "w_kind", "time", "event_id"]
            )
        )
    finally:
        engine.close()
    out: Evidence = {}
    for person, day, kind, event_id, index, time in zip(
        rows.column("w_person").to_pylist(),
        _dates(rows.column("w_day")),
        rows.column("w_kind").to_pylist(),
        rows.column("event_id").to_pylist(),
        rows.column("ledger_index").to_pylist(),
        _times(rows.column("time")),
        strict=True,
    ):
        out.setdefault((person, day, kind), []).append((event_id, index, time))
    return out


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _times(column: pa.ChunkedArray) -> list[dt.datetime]:
    """UTC datetimes from the column's microseconds.

    Arrow's own conversion (through zoneinfo) took 7x as long: seconds for the
    230,000 events linked at 30 M.
    """
    micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    return [_EPOCH + dt.timedelta(microseconds=m) for m in micros.tolist()]


def _dates(column: pa.ChunkedArray) -> list[dt.date]:
    """Dates from days since 1970 (4x quicker than Arrow's own conversion)."""
    epoch = dt.date(1970, 1, 1).toordinal()
    return [dt.date.fromordinal(epoch + d) for d in column.cast(pa.int32()).to_numpy().tolist()]


def _store_risk(conn: Connection, risks: list[risk.Risk]) -> None:
    now = dt.datetime.now(dt.UTC)
    conn.execute(delete(detect_risk))
    rows = [
        {"person": r.person, "score": r.score, "document": r.as_json(), "computed_at": now}
        for r in risks
    ]
    if rows:
        conn.execute(insert(detect_risk), rows)


def top(conn: Connection, n: int = 20) -> list[dict[str, Any]]:
    """The n highest risks, highest first: person, score, reasons, contributions."""
    rows = conn.execute(
        select(detect_risk.c.document)
        .order_by(detect_risk.c.score.desc(), detect_risk.c.person)
        .limit(n)
    )
    return [dict(r.document) for r in rows]


def _state(conn: Connection) -> dict[str, str]:
    row = conn.execute(select(detect_state.c.value).where(detect_state.c.key == "lake")).first()
    return dict(row.value) if row else {}


def _save_state(conn: Connection, marks: dict[str, str]) -> None:
    now = dt.datetime.now(dt.UTC)
    conn.execute(delete(detect_state).where(detect_state.c.key == "lake"))
    conn.execute(insert(detect_state).values(key="lake", value=marks, updated_at=now))


def _read_cache(path: Path) -> pa.Table | None:
    table = pq.read_table(path)
    return table.cast(FEATURE_SCHEMA) if table.schema.names == FEATURE_SCHEMA.names else None


def _write_cache(path: Path, table: pa.Table) -> None:
    """Write the feature table whole: a temporary file, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, path)
