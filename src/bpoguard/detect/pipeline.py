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

import pandas as pd  # type: ignore[import-untyped]
import pyarrow as pa
import pyarrow.parquet as pq
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
    table = _features(engine, spark_master, files, directory, ruleset, start, cached)
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
) -> pa.Table:
    if not files:
        return FEATURE_SCHEMA.empty_table()
    if start == dt.date.max and cached is not None:
        return cached
    engine: Engine = open_engine(engine_name, spark_master)
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
    persons = sorted({p.person for p in directory.people} | set(data["person"]) - accounts)
    if data.empty:
        return [], 0, persons
    data["day"] = pd.to_datetime(data["day"])
    frame = detectors.Frame.of(data, directory)
    found = detectors.run(frame, ruleset.detectors)
    found += anomaly.robust(frame) + anomaly.forest(frame)
    kept, suppressed = ruleset.suppress(found, as_of)
    return kept, suppressed, persons


# Which of the person's events on an alert's days are its evidence.
_EVIDENCE: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "canary-touched": lambda e: e["canary"].fillna(False).astype(bool),
    "reveal-without-interaction": lambda e: (
        (e["action"] == "record.reveal") & e["interaction_id"].isna()
    ),
    "bulk-harvest": lambda e: e["action"].str.startswith("record."),
    "reveal-surge": lambda e: e["action"] == "record.reveal",
    "mailbox-takeover": lambda e: e["action"].str.startswith(("mailbox.", "account.", "auth.")),
    "concurrent-use": lambda e: e["action"].str.startswith(("mailbox.", "auth.")),
    "off-premises": lambda e: e["src_ip"].notna(),
}
_MOVES = ("file.", "device.", "email.", "web.", "record.export")


def _evidence_filter(detector: str) -> Callable[[pd.DataFrame], pd.Series]:
    return _EVIDENCE.get(
        detector,
        lambda e: e["action"].str.startswith(_MOVES) | e["action"].str.startswith("record."),
    )


def _store_alerts(
    conn: Connection, found: list[Finding], files: list[Path], directory: Directory
) -> None:
    episodes = alerts.fold(alerts.episodes(found))
    events = _evidence_events(files, {(e.person, d) for e in episodes for d in _days(e)})
    now = dt.datetime.now(dt.UTC)
    for episode in episodes:
        evidence: list[tuple[str, int | None, dt.datetime]] = []
        if not events.empty:
            mine = events[(events["actor"] == episode.person) & events["day"].isin(_days(episode))]
            mine = mine[_evidence_filter(episode.detector.id)(mine)].head(alerts.MAX_EVIDENCE)
            # Instant alerts come from the guard's decisions: the same key, ledger index and all.
            evidence = [
                (
                    str(r.event_id),
                    None if pd.isna(r.ledger_index) else int(r.ledger_index),
                    r.time.to_pydatetime(),
                )
                for r in mine.itertuples()
            ]
        alerts.upsert(conn, episode, now, evidence)


def _days(episode: alerts.Episode) -> list[dt.date]:
    return sorted({f.day for f in episode.findings})


def _evidence_events(files: list[Path], pairs: set[tuple[str, dt.date]]) -> pd.DataFrame:
    """The events of these (person, day) pairs, from the lake (DuckDB reads them directly)."""
    days = sorted({d for _, d in pairs})
    wanted = [
        f for f in files if f.parent.name.removeprefix("day=") in {d.isoformat() for d in days}
    ]
    if not wanted:
        return pd.DataFrame()
    engine = DuckDBEngine()
    try:
        t = engine.read_parquet(wanted)
        people = sorted({p for p, _ in pairs})
        t = t.filter(t.actor.isin(people)).select(
            "event_id",
            "time",
            "actor",
            "action",
            "canary",
            "interaction_id",
            "src_ip",
            "ledger_index",
        )
        frame = engine.to_arrow(t.order_by(["time", "event_id"])).to_pandas()
    finally:
        engine.close()
    frame["day"] = [t.date() for t in frame["time"]]
    return frame


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
