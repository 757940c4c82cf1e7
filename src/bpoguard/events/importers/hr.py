"""Importers for the HR register (joiners, notice, leavers) and the asset register.

HR CSV: ``person,event,date[,leaving_date]`` with ``event`` one of ``joiner``,
``notice``, ``leaver`` and dates ``YYYY-MM-DD`` -> ``hr.join``, ``hr.notice``,
``hr.leave`` at 00:00 UTC that day. A notice with a leaving date also gives
the ``hr.leave`` planned for that date (``reasons``: ``planned at notice``),
so detection knows the leaving date from the day notice is given.

Asset CSV: ``asset,person,event,date`` with ``event`` one of ``issued``,
``returned``, ``lost`` -> ``asset.issue``, ``asset.return``, ``asset.lost``
(``device_id`` and ``target`` the asset, ``actor`` the person).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any, Final

from bpoguard.events.importers._common import BadLines, ImportReport, Progress, import_file
from bpoguard.events.importers._records import (
    Record,
    RowProblem,
    csv_rows,
    parse_date,
    raw_json,
    text,
    write_records,
)
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.workspace import Workspace

HR_EVENTS: Final = {"joiner": Action.HR_JOIN, "notice": Action.HR_NOTICE, "leaver": Action.HR_LEAVE}
ASSET_EVENTS: Final = {
    "issued": Action.ASSET_ISSUE,
    "returned": Action.ASSET_RETURN,
    "lost": Action.ASSET_LOST,
}


def import_hr(
    ws: Workspace, paths: list[Path], skip_bad: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import HR registers (joiners, notice, leavers)."""
    return _import(ws, paths, "hr", ("person", "event", "date"), hr_events, skip_bad, progress)


def import_assets(
    ws: Workspace, paths: list[Path], skip_bad: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import asset registers (issued, returned, lost)."""
    required = ("asset", "person", "event", "date")
    return _import(ws, paths, "assets", required, asset_events, skip_bad, progress)


def _import(
    ws: Workspace,
    paths: list[Path],
    kind: str,
    required: tuple[str, ...],
    convert: Any,
    skip_bad: bool,
    progress: Progress | None,
) -> ImportReport:
    tick = progress or (lambda stage, done, total: None)
    report = ImportReport()
    for path in paths:

        def body(writer: LakeWriter, bad: BadLines, path: Path = path) -> tuple[int, Any, Any]:
            return write_records(writer, csv_rows(path, required, tick), convert, bad, Counter())

        report.files.append(import_file(ws, path, f"{kind}.register", body, skip_bad, tick))
    return report


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def _required(record: Record, name: str) -> str:
    value = text(record.get(name))
    if value is None:
        raise RowProblem(f"{name} is empty")
    return value


def hr_events(record: Record) -> list[Event]:
    """One HR register row as its event(s)."""
    person = _required(record, "person")
    kind = _required(record, "event").lower()
    action = HR_EVENTS.get(kind)
    if action is None:
        raise RowProblem(f"event is not one of {', '.join(HR_EVENTS)}")
    day = parse_date(record.get("date"), "date")
    raw = raw_json(record)
    events = [
        Event(
            event_id=f"hr-{kind}-{person}-{day.isoformat()}",
            time=_midnight(day),
            source="hr",
            action=str(action),
            outcome=str(Outcome.SUCCESS),
            actor=person,
            target=f"person:{person}",
            raw=raw,
        )
    ]
    leaving = text(record.get("leaving_date"))
    if leaving is not None:
        if action is not Action.HR_NOTICE:
            raise RowProblem("leaving_date is given only with a notice")
        last = parse_date(leaving, "leaving_date")
        if last < day:
            raise RowProblem("leaving_date is before the notice")
        events.append(
            Event(
                event_id=f"hr-leaver-{person}-{last.isoformat()}",
                time=_midnight(last),
                source="hr",
                action=str(Action.HR_LEAVE),
                outcome=str(Outcome.SUCCESS),
                actor=person,
                target=f"person:{person}",
                reasons=["planned at notice"],
                raw=raw,
            )
        )
    return events


def asset_events(record: Record) -> list[Event]:
    """One asset register row as its event."""
    asset = _required(record, "asset")
    person = _required(record, "person")
    kind = _required(record, "event").lower()
    action = ASSET_EVENTS.get(kind)
    if action is None:
        raise RowProblem(f"event is not one of {', '.join(ASSET_EVENTS)}")
    day = parse_date(record.get("date"), "date")
    return [
        Event(
            event_id=f"asset-{kind}-{asset}-{person}-{day.isoformat()}",
            time=_midnight(day),
            source="assets",
            action=str(action),
            outcome=str(Outcome.SUCCESS),
            actor=person,
            target=f"asset:{asset}",
            device_id=asset,
            raw=raw_json(record),
        )
    ]
