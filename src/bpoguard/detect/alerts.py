"""Alerts: stored, de-duplicated, linked to their evidence, triaged by people.

One alert per person, detector and *episode*: firings of one detector for one
person no more than EPISODE_GAP_DAYS apart extend the same alert instead of
raising a new one. A re-run updates an alert's window, score and explanation
but never its status: what an analyst triaged, dismissed or escalated stays so.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from bpoguard.detect._tables import detect_alerts, detect_evidence
from bpoguard.detect.findings import EPISODE_GAP_DAYS, Detector, Finding, Severity
from bpoguard.errors import InputError

MAX_EVIDENCE = 200  # events linked per alert; the rest are counted, not listed


class Status(enum.StrEnum):
    """Where an alert is in triage."""

    NEW = "new"
    TRIAGED = "triaged"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"


class AlertError(InputError):
    """An alert cannot be found or changed as asked."""


@dataclass(frozen=True)
class Alert:
    """An alert as analysts see it."""

    id: int
    person: str
    detector: str
    severity: str
    window_start: dt.date
    window_end: dt.date
    score: float
    summary: str
    explanation: str
    firings: int
    first_seen: dt.datetime
    detected_at: dt.datetime
    status: str
    status_reason: str | None
    status_by: str | None
    evidence: tuple[tuple[str, int | None], ...] = ()

    def as_json(self) -> dict[str, object]:
        """The alert as a JSON document."""
        doc: dict[str, object] = {
            "id": self.id,
            "person": self.person,
            "detector": self.detector,
            "severity": self.severity,
            "window": [self.window_start.isoformat(), self.window_end.isoformat()],
            "score": round(self.score, 3),
            "summary": self.summary,
            "explanation": self.explanation,
            "firings": self.firings,
            "first_seen": _iso(self.first_seen),
            "detected_at": _iso(self.detected_at),
            "status": self.status,
            "status_reason": self.status_reason,
            "status_by": self.status_by,
        }
        if self.evidence:
            doc["evidence"] = [{"event_id": e, "ledger_index": i} for e, i in self.evidence]
        return doc


@dataclass(frozen=True)
class Episode:
    """Consecutive findings of one detector for one person, to become one alert."""

    person: str
    detector: Detector
    start: dt.date
    end: dt.date
    findings: tuple[Finding, ...]
    also: tuple[Finding, ...] = ()  # findings of other detectors folded into this alert

    @property
    def score(self) -> float:
        """The sum of its findings' scores."""
        return sum(f.score for f in self.findings)


def episodes(findings: Iterable[Finding]) -> list[Episode]:
    """Group findings into episodes: same person and detector, gaps of at most a few days."""
    by_key: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in findings:
        by_key[(f.person, f.detector.id)].append(f)
    out: list[Episode] = []
    for (person, _), group in sorted(by_key.items()):
        group.sort(key=lambda f: f.day)
        current = [group[0]]
        for f in group[1:]:
            if (f.day - current[-1].day).days > EPISODE_GAP_DAYS:
                out.append(_episode(person, current))
                current = []
            current.append(f)
        out.append(_episode(person, current))
    return out


def fold(found: list[Episode]) -> list[Episode]:
    """Fold an episode into a more severe one of the same person that covers all its days.

    One story (a harvest night, a takeover) trips several detectors; the
    analyst gets one alert for it, whose explanation lists the others. The
    folded findings still count in the risk score.
    """
    rank = {s: i for i, s in enumerate(Severity)}
    by_person: dict[str, list[Episode]] = defaultdict(list)
    for e in found:
        by_person[e.person].append(e)
    out: list[Episode] = []
    for group in by_person.values():
        group.sort(
            key=lambda e: (-rank[e.detector.severity], -len(e.findings), e.start, e.detector.id)
        )
        kept: list[Episode] = []
        for e in group:
            days = {f.day for f in e.findings}
            host = next((k for k in kept if days <= {f.day for f in k.findings}), None)
            if host is None:
                kept.append(e)
                continue
            i = kept.index(host)
            kept[i] = Episode(
                host.person,
                host.detector,
                host.start,
                host.end,
                host.findings,
                host.also + e.findings,
            )
        out += kept
    return sorted(out, key=lambda e: (e.person, e.start, e.detector.id))


def _episode(person: str, findings: list[Finding]) -> Episode:
    return Episode(person, findings[0].detector, findings[0].day, findings[-1].day, tuple(findings))


Evidence = Sequence[tuple[str, int | None, dt.datetime]]  # (lake event id, ledger index, time)


def upsert(conn: Connection, episode: Episode, now: dt.datetime, evidence: Evidence = ()) -> int:
    """Store an episode as an alert: extend the matching one, or raise a new one."""
    return upsert_many(conn, [(episode, evidence)], now)[0]


@dataclass(eq=False)  # one object per alert: compared by identity
class _Stored:
    """An alert's window and evidence as a batch of upserts leaves it."""

    id: int | None  # None: raised by this batch, not inserted yet
    person: str
    detector: str
    start: dt.date
    end: dt.date
    firings: int
    values: dict[str, object]  # the columns the batch sets
    have: set[str] | None  # the events it links; None: stored ones, not read yet
    new_evidence: list[tuple[str, int | None, dt.datetime]]
    order: int  # where the batch raised it (-1: stored before), for the ids it gets


def upsert_many(
    conn: Connection, items: Sequence[tuple[Episode, Evidence]], now: dt.datetime
) -> list[int]:
    """Store each episode as an alert, as :func:`upsert` would one after the other; their ids.

    The matching alerts are read in one query and matched in memory, then the
    new alerts, the changed ones and the evidence are written in a statement
    each: one upsert after another cost four statements an alert (29 s for
    2,522 alerts at 30 M events).
    """
    index = _load_windows(conn, {e.person for e, _ in items})
    touched: list[_Stored] = []
    seen: set[_Stored] = set()
    chosen: list[_Stored] = []
    for episode, evidence in items:
        found = _match_in(index, episode)
        values = _values(episode, now)
        if found is None:
            found = _Stored(
                None,
                episode.person,
                episode.detector.id,
                episode.start,
                episode.end,
                len(episode.findings),
                {
                    **values,
                    "first_seen": now,
                    "detected_at": _end_of(episode.start),
                    "status": Status.NEW.value,
                },
                set(),
                [],
                len(touched),
            )
            index[(episode.person, episode.detector.id)].append(found)
            touched.append(found)
        else:
            if episode.start < found.start:
                values["detected_at"] = _end_of(episode.start)
            found.start, found.end = min(found.start, episode.start), max(found.end, episode.end)
            found.firings = max(found.firings, len(episode.findings))
            found.values.update(values)
            if found not in seen:
                touched.append(found)
        seen.add(found)
        chosen.append(found)
        _add_evidence(conn, found, evidence)
    _write(conn, touched)
    return [_id(s) for s in chosen]


def _id(stored: _Stored) -> int:
    assert stored.id is not None  # every alert of the batch is written by now
    return stored.id


def _values(episode: Episode, now: dt.datetime) -> dict[str, object]:
    top = max(episode.findings, key=lambda f: f.score)
    lines = [f.explanation for f in episode.findings[-20:]]
    lines += [f"also {f.detector.id}: {f.explanation}" for f in episode.also[:20]]
    return {
        "severity": episode.detector.severity.value,
        "score": episode.score,
        "summary": f"{episode.detector.description}: {top.explanation}"[:500],
        "explanation": "\n".join(lines),
        "updated_at": now,
    }


_CHUNK = 500  # ids or persons in one IN list (SQLite's default limit is far above)


def _load_windows(conn: Connection, persons: set[str]) -> dict[tuple[str, str], list[_Stored]]:
    """The stored alerts of these persons, by person and detector."""
    out: dict[tuple[str, str], list[_Stored]] = defaultdict(list)
    wanted = sorted(persons)
    for i in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(
                detect_alerts.c.id,
                detect_alerts.c.person,
                detect_alerts.c.detector,
                detect_alerts.c.window_start,
                detect_alerts.c.window_end,
                detect_alerts.c.firings,
            ).where(detect_alerts.c.person.in_(wanted[i : i + _CHUNK]))
        )
        for r in rows:
            out[(r.person, r.detector)].append(
                _Stored(
                    int(r.id),
                    r.person,
                    r.detector,
                    r.window_start,
                    r.window_end,
                    int(r.firings),
                    {},
                    None,
                    [],
                    -1,
                )
            )
    return out


def _match_in(index: dict[tuple[str, str], list[_Stored]], episode: Episode) -> _Stored | None:
    """What :func:`_matching` finds, in memory: the overlapping alert that ends last.

    Ties (two alerts ending the same day) go to the later one, as SQLite's
    backward scan of the (person, detector, window_end) index gives them.
    """
    gap = dt.timedelta(days=EPISODE_GAP_DAYS)
    near = [
        s
        for s in index.get((episode.person, episode.detector.id), ())
        if s.end >= episode.start - gap and s.start <= episode.end + gap
    ]
    if not near:
        return None
    return max(near, key=lambda s: (s.end, s.id is None, s.id or 0, s.order))


def _add_evidence(conn: Connection, stored: _Stored, evidence: Evidence) -> None:
    """Queue events for the alert, as :func:`link` would add them now."""
    if not evidence:
        return
    if stored.have is None:
        # A stored alert: what it already links is read once, the first time it matters.
        stored.have = set(
            conn.scalars(
                select(detect_evidence.c.event_id).where(detect_evidence.c.alert_id == stored.id)
            )
        )
    room = MAX_EVIDENCE - len(stored.have)
    rows = [e for e in evidence if e[0] not in stored.have][: max(0, room)]
    stored.have.update(e for e, _, _ in rows)
    stored.new_evidence += rows


def _write(conn: Connection, touched: list[_Stored]) -> None:
    """The batch's new alerts, changed alerts and new evidence, a statement each."""
    new = [s for s in touched if s.id is None]
    if new:
        ids = conn.execute(
            insert(detect_alerts).returning(detect_alerts.c.id, sort_by_parameter_order=True),
            [
                {
                    "person": s.person,
                    "detector": s.detector,
                    "window_start": s.start,
                    "window_end": s.end,
                    "firings": s.firings,
                    **s.values,
                }
                for s in new
            ],
        ).scalars()
        for s, alert_id in zip(new, ids, strict=True):
            s.id = int(alert_id)
    changed = [s for s in touched if s not in new]
    for keys, group in _by_columns(changed).items():
        conn.execute(
            update(detect_alerts)
            .where(detect_alerts.c.id == bindparam("b_id"))
            .values({k: bindparam(f"b_{k}") for k in keys}),
            [{f"b_{k}": v for k, v in _changes(s).items()} | {"b_id": s.id} for s in group],
        )
    _insert_evidence(conn, [(s.id, e, i, at) for s in touched for e, i, at in s.new_evidence])


def _insert_evidence(conn: Connection, rows: list[tuple[object, ...]]) -> None:
    """Evidence rows (alert id, event id, ledger index, time) in one executemany of the driver.

    SQLAlchemy's own executemany binds each row through its compiler: 220,000
    rows at 30 M events cost more than the database's work. The columns' bind
    processors (SQLite writes datetimes as text) are applied here as it would.
    """
    if not rows:
        return
    dialect = conn.dialect
    compiled = insert(detect_evidence).compile(dialect=dialect)
    names = [c.name for c in detect_evidence.columns]
    values = dict(zip(names, (list(c) for c in zip(*rows, strict=True)), strict=True))
    for name in names:  # column by column: only SQLite's datetimes need one
        bind = detect_evidence.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if bind is not None:
            values[name] = [None if v is None else bind(v) for v in values[name]]
    params: list[Any]
    if compiled.positional:
        params = list(zip(*(values[n] for n in compiled.positiontup or ()), strict=True))
    else:
        params = [dict(zip(values, r, strict=True)) for r in zip(*values.values(), strict=True)]
    conn.exec_driver_sql(compiled.string, params)


def _changes(s: _Stored) -> dict[str, object]:
    return {"window_start": s.start, "window_end": s.end, "firings": s.firings, **s.values}


def _by_columns(stored: list[_Stored]) -> dict[tuple[str, ...], list[_Stored]]:
    """Changed alerts grouped by the columns they change (detected_at moves for some)."""
    out: dict[tuple[str, ...], list[_Stored]] = defaultdict(list)
    for s in stored:
        out[tuple(_changes(s))].append(s)
    return out


def _matching(
    conn: Connection, person: str, detector: str, start: dt.date, end: dt.date
) -> tuple[int, dt.date, dt.date, int] | None:
    gap = dt.timedelta(days=EPISODE_GAP_DAYS)
    row = conn.execute(
        select(
            detect_alerts.c.id,
            detect_alerts.c.window_start,
            detect_alerts.c.window_end,
            detect_alerts.c.firings,
        )
        .where(
            detect_alerts.c.person == person,
            detect_alerts.c.detector == detector,
            detect_alerts.c.window_end >= start - gap,
            detect_alerts.c.window_start <= end + gap,
        )
        .order_by(detect_alerts.c.window_end.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return int(row.id), row.window_start, row.window_end, int(row.firings)


def link(
    conn: Connection, alert_id: int, evidence: Sequence[tuple[str, int | None, dt.datetime]]
) -> None:
    """Link events (lake id, ledger index, time) to an alert, up to MAX_EVIDENCE of them."""
    if not evidence:
        return
    have = set(
        conn.scalars(
            select(detect_evidence.c.event_id).where(detect_evidence.c.alert_id == alert_id)
        )
    )
    room = MAX_EVIDENCE - len(have)
    rows = [
        {"alert_id": alert_id, "event_id": e, "ledger_index": i, "at": at}
        for e, i, at in evidence
        if e not in have
    ][: max(0, room)]
    if rows:
        conn.execute(insert(detect_evidence), rows)


def raise_instant(
    conn: Connection,
    detector: Detector,
    person: str,
    at: dt.datetime,
    explanation: str,
    event: tuple[str, int | None],
) -> bool:
    """Raise (or extend) an alert for one decision, in the caller's transaction; True if new."""
    day = at.astimezone(dt.UTC).date()
    existing = _matching(conn, person, detector.id, day, day)
    now = dt.datetime.now(dt.UTC)
    created = existing is None
    if existing is None:
        alert_id = int(
            conn.execute(
                insert(detect_alerts).values(
                    person=person,
                    detector=detector.id,
                    severity=detector.severity.value,
                    window_start=day,
                    window_end=day,
                    score=detector.severity.weight,
                    summary=f"{detector.description}: {explanation}"[:500],
                    explanation=explanation,
                    firings=1,
                    first_seen=now,
                    detected_at=at,
                    updated_at=now,
                    status=Status.NEW.value,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    else:
        alert_id, start, end, firings = existing
        conn.execute(
            update(detect_alerts)
            .where(detect_alerts.c.id == alert_id)
            .values(
                window_start=min(start, day),
                window_end=max(end, day),
                firings=firings + 1,
                updated_at=now,
            )
        )
    link(conn, alert_id, [(event[0], event[1], at)])
    return created


def list_alerts(
    conn: Connection,
    status: str | None = None,
    person: str | None = None,
    severity: str | None = None,
    limit: int = 100,
) -> list[Alert]:
    """Alerts, most severe and highest scoring first."""
    query = select(detect_alerts)
    if status:
        query = query.where(detect_alerts.c.status == Status(status).value)
    if person:
        query = query.where(detect_alerts.c.person == person)
    if severity:
        query = query.where(detect_alerts.c.severity == Severity(severity).value)
    rank = {s.value: i for i, s in enumerate(reversed(Severity))}
    rows = list(conn.execute(query))
    rows.sort(key=lambda r: (rank[r.severity], -r.score, r.id))
    return [_alert(r) for r in rows[:limit]]


def get(conn: Connection, alert_id: int) -> Alert:
    """One alert with its evidence."""
    row = conn.execute(select(detect_alerts).where(detect_alerts.c.id == alert_id)).first()
    if row is None:
        raise AlertError(f"no alert {alert_id}")
    evidence = tuple(
        (r.event_id, r.ledger_index)
        for r in conn.execute(
            select(detect_evidence.c.event_id, detect_evidence.c.ledger_index)
            .where(detect_evidence.c.alert_id == alert_id)
            .order_by(detect_evidence.c.at, detect_evidence.c.event_id)
        )
    )
    return _alert(row, evidence)


def triage(
    conn: Connection, alert_id: int, status: str, by: str, reason: str | None, now: dt.datetime
) -> Alert:
    """Set an alert's status; dismissing needs a reason."""
    try:
        new = Status(status)
    except ValueError:
        raise AlertError(f"unknown status {status!r}; choose one of: {', '.join(Status)}") from None
    if new is Status.DISMISSED and not (reason and reason.strip()):
        raise AlertError("dismissing an alert needs --reason")
    get(conn, alert_id)
    conn.execute(
        update(detect_alerts)
        .where(detect_alerts.c.id == alert_id)
        .values(status=new.value, status_reason=reason, status_by=by, status_at=now)
    )
    return get(conn, alert_id)


def count(conn: Connection) -> int:
    """How many alerts there are."""
    return int(conn.scalar(select(func.count()).select_from(detect_alerts)) or 0)


def _alert(row: object, evidence: tuple[tuple[str, int | None], ...] = ()) -> Alert:
    r = row  # a SQLAlchemy Row of detect_alerts
    return Alert(
        id=int(r.id),  # type: ignore[attr-defined]
        person=r.person,  # type: ignore[attr-defined]
        detector=r.detector,  # type: ignore[attr-defined]
        severity=r.severity,  # type: ignore[attr-defined]
        window_start=r.window_start,  # type: ignore[attr-defined]
        window_end=r.window_end,  # type: ignore[attr-defined]
        score=float(r.score),  # type: ignore[attr-defined]
        summary=r.summary,  # type: ignore[attr-defined]
        explanation=r.explanation,  # type: ignore[attr-defined]
        firings=int(r.firings),  # type: ignore[attr-defined]
        first_seen=r.first_seen,  # type: ignore[attr-defined]
        detected_at=r.detected_at,  # type: ignore[attr-defined]
        status=r.status,  # type: ignore[attr-defined]
        status_reason=r.status_reason,  # type: ignore[attr-defined]
        status_by=r.status_by,  # type: ignore[attr-defined]
        evidence=evidence,
    )


def _end_of(day: dt.date) -> dt.datetime:
    """When a daily detector could first have fired: once the day's events were all in."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        at = at.replace(tzinfo=dt.UTC)
    return at.isoformat()
