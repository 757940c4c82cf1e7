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

from sqlalchemy import Connection, func, insert, select, update

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


def upsert(
    conn: Connection,
    episode: Episode,
    now: dt.datetime,
    evidence: Sequence[tuple[str, int | None, dt.datetime]] = (),
) -> int:
    """Store an episode as an alert: extend the matching one, or raise a new one."""
    top = max(episode.findings, key=lambda f: f.score)
    summary = f"{episode.detector.description}: {top.explanation}"[:500]
    lines = [f.explanation for f in episode.findings[-20:]]
    lines += [f"also {f.detector.id}: {f.explanation}" for f in episode.also[:20]]
    explanation = "\n".join(lines)
    existing = _matching(conn, episode.person, episode.detector.id, episode.start, episode.end)
    values: dict[str, object] = {
        "severity": episode.detector.severity.value,
        "score": episode.score,
        "summary": summary,
        "explanation": explanation,
        "updated_at": now,
    }
    if existing is None:
        alert_id = int(
            conn.execute(
                insert(detect_alerts).values(
                    person=episode.person,
                    detector=episode.detector.id,
                    window_start=episode.start,
                    window_end=episode.end,
                    firings=len(episode.findings),
                    first_seen=now,
                    detected_at=_end_of(episode.start),
                    status=Status.NEW.value,
                    **values,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    else:
        alert_id, start, end, firings = existing
        if episode.start < start:
            values["detected_at"] = _end_of(episode.start)
        conn.execute(
            update(detect_alerts)
            .where(detect_alerts.c.id == alert_id)
            .values(
                window_start=min(start, episode.start),
                window_end=max(end, episode.end),
                firings=max(firings, len(episode.findings)),
                **values,
            )
        )
    link(conn, alert_id, evidence)
    return alert_id


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
