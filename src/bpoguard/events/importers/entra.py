"""Importer for Microsoft Entra ID sign-in logs: JSON (portal or Graph export) and CSV.

Fields are Microsoft Graph's ``signIn`` resource: ``id``, ``createdDateTime``,
``userPrincipalName``, ``ipAddress``, ``appDisplayName``, ``status.errorCode``
and ``status.failureReason``, ``location`` (``city``, ``countryOrRegion``),
``deviceDetail`` (``deviceId``, ``displayName``). JSON comes as an array, a
Graph page (``{"value": [...]}``) or JSON Lines; CSV with those names flattened
(``status.errorCode``) or with the portal's download headers (``Date (UTC)``,
``Request ID``, ``Username``, ``IP address``, ``Application``,
``Sign-in error code``, ``Failure reason``, ``Location``, ``Device ID``).

Every record becomes one ``auth.signin``: ``success`` when the error code is 0,
otherwise ``failure`` with the code and reason in ``reasons``. Entra's
``location`` is not a site of ours, so it stays in ``raw`` (``site_id`` is left
empty); detection judges premises by ``src_ip``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from bpoguard.events.importers._common import BadLines, ImportReport, Progress, import_file
from bpoguard.events.importers._records import (
    Record,
    RowProblem,
    csv_rows,
    field,
    json_layout,
    json_records,
    parse_time,
    raw_json,
    text,
    write_records,
)
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.workspace import Workspace

SOURCE: Final = "entra"
# The portal's CSV download headers, as the Graph names they carry.
PORTAL_HEADERS: Final = {
    "Date (UTC)": "createdDateTime",
    "Request ID": "id",
    "User": "userDisplayName",
    "Username": "userPrincipalName",
    "User ID": "userId",
    "IP address": "ipAddress",
    "Application": "appDisplayName",
    "Application ID": "appId",
    "Status": "status.summary",
    "Sign-in error code": "status.errorCode",
    "Failure reason": "status.failureReason",
    "Location": "location.text",
    "Device ID": "deviceDetail.deviceId",
    "Browser": "deviceDetail.browser",
    "Operating System": "deviceDetail.operatingSystem",
    "Client app": "clientAppUsed",
}
REQUIRED: Final = ("createdDateTime", "userPrincipalName", "status.errorCode")


def import_entra(
    ws: Workspace, paths: list[Path], skip_bad: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import Entra ID sign-in log exports (``.json``/``.jsonl`` or ``.csv``)."""
    tick = progress or (lambda stage, done, total: None)
    report = ImportReport()
    for path in paths:
        is_csv = path.suffix.lower() == ".csv"

        def body(
            writer: LakeWriter, bad: BadLines, path: Path = path, is_csv: bool = is_csv
        ) -> tuple[int, Any, Any]:
            records: Iterator[tuple[int, Any]]
            if is_csv:
                records = csv_rows(path, REQUIRED, tick, aliases=PORTAL_HEADERS)
            else:
                records = json_records(path, tick)
            return write_records(writer, records, to_events, bad, Counter())

        unit = "line" if is_csv or json_layout(path) == "lines" else "record"
        report.files.append(import_file(ws, path, "entra.signin", body, skip_bad, tick, unit=unit))
    return report


def to_events(record: Record) -> list[Event]:
    """One sign-in as an ``auth.signin`` event."""
    upn = text(field(record, "userPrincipalName"))
    if upn is None:
        raise RowProblem("userPrincipalName is missing")
    when = parse_time(field(record, "createdDateTime"), "createdDateTime")
    code = _code(field(record, "status.errorCode"))
    sign_in_id = text(field(record, "id"))
    if sign_in_id is None:
        # Without Graph's id, the sign-in is known by who, when and from where.
        sign_in_id = f"{upn}-{when:%Y%m%dT%H%M%S%f}-{text(field(record, 'ipAddress')) or ''}"
    reasons = []
    if code != 0:
        reason = text(field(record, "status.failureReason"))
        reasons.append(f"error {code}" + (f": {reason}" if reason else ""))
    app = text(field(record, "appDisplayName"))
    return [
        Event(
            event_id=f"{SOURCE}-{sign_in_id}",
            time=when,
            source=SOURCE,
            action=str(Action.SIGNIN),
            outcome=str(Outcome.SUCCESS if code == 0 else Outcome.FAILURE),
            actor=upn.lower(),
            account=upn.lower(),
            target=app,
            src_ip=text(field(record, "ipAddress")),
            device_id=text(field(record, "deviceDetail.deviceId"))
            or text(field(record, "deviceDetail.displayName")),
            reasons=reasons,
            raw=raw_json(record),
        )
    ]


def _code(value: object) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowProblem("status.errorCode is missing")
    try:
        return int(str(value).strip())
    except ValueError:
        raise RowProblem("status.errorCode is not a number") from None
