"""A batch of upserts leaves the store exactly as one upsert after another did.

The reference is the one-at-a-time upsert as it was before batching: find the
matching alert in the database, insert or update it, read what it links and
add the rest of the evidence. Both run over the same batches (new alerts, a
stored alert matched twice in one batch, evidence already linked, the cap)
and every row of both tables must be equal, ids included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert, select, update

from bpoguard import workspace
from bpoguard.detect import alerts, detectors
from bpoguard.detect._tables import detect_alerts, detect_evidence
from bpoguard.detect.alerts import MAX_EVIDENCE, Episode
from bpoguard.detect.findings import EPISODE_GAP_DAYS, Detector, Finding
from bpoguard.workspace import Workspace

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)
Evidence = Sequence[tuple[str, int | None, dt.datetime]]


def _one_by_one(conn: Connection, episode: Episode, now: dt.datetime, evidence: Evidence) -> int:
    """The upsert as it was, four statements an alert: the behaviour the batch must keep."""
    top = max(episode.findings, key=lambda f: f.score)
    lines = [f.explanation for f in episode.findings[-20:]]
    lines += [f"also {f.detector.id}: {f.explanation}" for f in episode.also[:20]]
    gap = dt.timedelta(days=EPISODE_GAP_DAYS)
    row = conn.execute(
        select(detect_alerts.c.id, detect_alerts.c.window_start, detect_alerts.c.window_end,
               detect_alerts.c.firings)
        .where(detect_alerts.c.person == episode.person,
               detect_alerts.c.detector == episode.detector.id,
               detect_alerts.c.window_end >= episode.start - gap,
               detect_alerts.c.window_start <= episode.end + gap)
        .order_by(detect_alerts.c.window_end.desc())
        .limit(1)
    ).first()  # fmt: skip
    values: dict[str, object] = {
        "severity": episode.detector.severity.value,
        "score": episode.score,
        "summary": f"{episode.detector.description}: {top.explanation}"[:500],
        "explanation": "\n".join(lines),
        "updated_at": now,
    }
    end_of = dt.datetime.combine(episode.start, dt.time(23, 59, 59), tzinfo=dt.UTC)
    if row is None:
        alert_id = conn.execute(
            insert(detect_alerts).values(
                person=episode.person, detector=episode.detector.id,
                window_start=episode.start, window_end=episode.end,
                firings=len(episode.findings), first_seen=now, detected_at=end_of,
                status="new", **values,
            )
        ).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
    else:
        alert_id = row.id
        if episode.start < row.window_start:
            values["detected_at"] = end_of
        conn.execute(
            update(detect_alerts).where(detect_alerts.c.id == alert_id).values(
                window_start=min(row.window_start, episode.start),
                window_end=max(row.window_end, episode.end),
                firings=max(row.firings, len(episode.findings)), **values,
            )
        )  # fmt: skip
    have = set(
        conn.scalars(select(detect_evidence.c.event_id).where(detect_evidence.c.alert_id == alert_id))
    )  # fmt: skip
    rows = [
        {"alert_id": alert_id, "event_id": e, "ledger_index": i, "at": at}
        for e, i, at in evidence
        if e not in have
    ][: max(0, MAX_EVIDENCE - len(have))]
    if rows:
        conn.execute(insert(detect_evidence), rows)
    return int(alert_id)


def _episode(detector: Detector, person: str, days: list[int], weight: float = 1.0) -> Episode:
    found = [
        Finding(detector, person, DAY + dt.timedelta(days=d), f"{person} day {d}", weight)
        for d in days
    ]
    [episode] = alerts.episodes(found)
    return episode


def _events(prefix: str, n: int) -> list[tuple[str, int | None, dt.datetime]]:
    start = dt.datetime.combine(DAY, dt.time(9), tzinfo=dt.UTC)
    return [
        (f"{prefix}-{i:04d}", i if i % 3 == 0 else None, start + dt.timedelta(seconds=i))
        for i in range(n)
    ]


def _batches() -> list[list[tuple[Episode, Evidence]]]:
    """Three detection runs' worth of upserts, chosen to reach every branch."""
    first = [
        (_episode(detectors.BULK, "alice", [0, 1]), _events("a", 150)),
        (_episode(detectors.CANARY, "alice", [0]), _events("c", 2)),
        (_episode(detectors.BULK, "bob", [5]), []),
        (_episode(detectors.TAKEOVER, "carol", [3, 4]), _events("t", 250)[:MAX_EVIDENCE]),
    ]
    second = [
        # alice's harvest again, longer, more evidence: the stored one extended, capped.
        (_episode(detectors.BULK, "alice", [0, 1, 2], 2.0), _events("a", 150) + _events("b", 80)),
        # bob: starts earlier (detected_at moves), then a second episode reaching the same alert.
        (_episode(detectors.BULK, "bob", [2]), _events("p", 5)),
        (_episode(detectors.BULK, "bob", [8, 9]), _events("q", 5)),
        # far from alice's: a new alert of the same person and detector.
        (_episode(detectors.BULK, "alice", [30]), _events("z", 3)),
        (_episode(detectors.CONCURRENT, "dave", [1]), _events("d", 1)),
    ]
    third = [(e, ev) for e, ev in second[:2]] + [
        (_episode(detectors.BULK, "erin", [4]), _events("e", 3))
    ]
    return [first, second, third]


def _plain(value: object) -> object:
    """A column's value as both stores give it back (SQLite's datetimes are naive UTC)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return value


def _snapshot(conn: Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    query = select(detect_alerts).order_by(detect_alerts.c.id)
    stored = [tuple(_plain(v) for v in r) for r in conn.execute(query)]
    linked = sorted(tuple(_plain(v) for v in r) for r in conn.execute(select(detect_evidence)))
    return stored, linked


def _workspace(home: Path, db: str | None = None) -> Workspace:
    workspace.init(home, db=db)
    return Workspace.open(home, db=db)


def _compare(one: Workspace, batch: Workspace) -> None:
    for run, items in enumerate(_batches()):
        now = NOW + dt.timedelta(hours=run)
        with one.store.engine.begin() as conn:
            expected_ids = [_one_by_one(conn, e, now, ev) for e, ev in items]
        with batch.store.engine.begin() as conn:
            ids = alerts.upsert_many(conn, items, now)
        assert ids == expected_ids
        with one.store.engine.connect() as a, batch.store.engine.connect() as b:
            assert _snapshot(b) == _snapshot(a)
    with batch.store.engine.connect() as conn:
        bob = alerts.list_alerts(conn, person="bob")
        capped = [len(alerts.get(conn, a.id).evidence) for a in alerts.list_alerts(conn)]
    # The batches did reach the branches they were written for.
    assert len(bob) == 1 and bob[0].window_start == DAY + dt.timedelta(days=2)
    assert bob[0].window_end == DAY + dt.timedelta(days=9)
    assert max(capped) == MAX_EVIDENCE


def test_batch_upsert_leaves_the_same_rows_as_one_upsert_after_another(tmp_path: Path) -> None:
    with _workspace(tmp_path / "one") as one, _workspace(tmp_path / "batch") as batch:
        _compare(one, batch)


@pytest.mark.postgres
def test_batch_upsert_on_postgresql_leaves_the_rows_one_by_one_leaves_on_sqlite(
    tmp_path: Path, pg_db: str
) -> None:
    # One fresh database each: the reference on SQLite, the batch on PostgreSQL (ids from 1
    # on both); the rows must agree once SQLite's naive datetimes are read as UTC.
    with _workspace(tmp_path / "one") as one, _workspace(tmp_path / "b", db=pg_db) as batch:
        _compare(one, batch)


def test_single_upsert_still_extends_an_instant_alert(tmp_path: Path) -> None:
    with _workspace(tmp_path / "ws") as ws:
        _extend_instant(ws)


def _extend_instant(ws: Workspace) -> None:
    at = dt.datetime.combine(DAY, dt.time(10), tzinfo=dt.UTC)
    with ws.store.engine.begin() as conn:
        assert alerts.raise_instant(conn, detectors.CANARY, "alice", at, "canary", ("ev-1", 7))
        episode = _episode(detectors.CANARY, "alice", [0, 1])
        alert_id = alerts.upsert(conn, episode, NOW, [("ev-1", 7, at), ("ev-2", None, at)])
    with ws.store.engine.connect() as conn:
        [only] = alerts.list_alerts(conn)
        assert only.id == alert_id
        assert only.detected_at.replace(tzinfo=dt.UTC) == at  # the decision, not the day's end
        assert [e for e, _ in alerts.get(conn, alert_id).evidence] == ["ev-1", "ev-2"]
