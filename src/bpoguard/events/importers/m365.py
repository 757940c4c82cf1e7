"""Importer for Microsoft 365 unified audit log exports (Purview audit search, CSV).

The export has one row per audit record and the record itself as JSON in
its ``AuditData`` column (older exports name the columns ``CreationDate``,
``UserIds``, ``Operations``, ``AuditData``; newer ones ``RecordId``,
``CreationDate``, ``RecordType``, ``Operation``, ``UserId``, ``AuditData``).
Everything is read from ``AuditData``, whose field names are Microsoft's
documented audit schema (CreationTime, Id, Operation, UserId, ClientIP,
ClientIPAddress, MailboxOwnerUPN, ResultStatus, ObjectId, ...).

Message subjects and bodies are removed from ``raw``: an audit record's
subject line can quote a customer. Mapped operations (others are counted,
not imported):

=============================================  ==========================
``MailboxLogin``                               ``mailbox.signin``
``MailItemsAccessed``                          ``mailbox.access``
``Send``, ``SendAs``, ``SendOnBehalf``         ``email.send``
``Change user password.``                      ``account.password_change``
``Reset user password.``                       ``account.password_reset``
``Set-Mailbox``, ``Add-MailboxPermission``,
``New-InboxRule``, ``Set-InboxRule``           ``mailbox.change``
=============================================  ==========================
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

from bpoguard.events.importers._common import (
    BadLines,
    ImportReport,
    Progress,
    import_file,
)
from bpoguard.events.importers._records import (
    Record,
    RowProblem,
    Unmapped,
    csv_rows,
    parse_time,
    raw_json,
    text,
    write_records,
)
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Action, Event, Outcome
from bpoguard.workspace import Workspace

SOURCE: Final = "m365"
_ACTIONS: Final = {
    "MailboxLogin": Action.MAILBOX_SIGNIN,
    "MailItemsAccessed": Action.MAILBOX_ACCESS,
    "Send": Action.EMAIL_SEND,
    "SendAs": Action.EMAIL_SEND,
    "SendOnBehalf": Action.EMAIL_SEND,
    "Change user password.": Action.PASSWORD_CHANGE,
    "Reset user password.": Action.PASSWORD_RESET,
    "Set-Mailbox": Action.MAILBOX_CHANGE,
    "Add-MailboxPermission": Action.MAILBOX_CHANGE,
    "New-InboxRule": Action.MAILBOX_CHANGE,
    "Set-InboxRule": Action.MAILBOX_CHANGE,
}
_SUCCESS: Final = frozenset({"succeeded", "success", "true", "partiallysucceeded"})
# Set-Mailbox parameters that send mail elsewhere: their value is the destination.
_FORWARDING: Final = ("ForwardingSmtpAddress", "ForwardingAddress", "ForwardTo", "RedirectTo")


def import_m365(
    ws: Workspace, paths: list[Path], skip_bad: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import Microsoft 365 unified audit log CSV exports."""
    tick = progress or (lambda stage, done, total: None)
    report = ImportReport()
    unmapped: Counter[str] = Counter()
    for path in paths:

        def body(writer: LakeWriter, bad: BadLines, path: Path = path) -> tuple[int, Any, Any]:
            rows = csv_rows(path, ("AuditData",), tick)
            return write_records(writer, _records(rows), to_events, bad, unmapped)

        report.files.append(import_file(ws, path, "m365.audit", body, skip_bad, tick))
    if unmapped:
        listed = ", ".join(f"{op} ({n})" for op, n in sorted(unmapped.items()))
        report.notes.append(f"operations not mapped, not imported: {listed}")
    return report


def _records(rows: Any) -> Any:
    for line, row in rows:
        if not isinstance(row, dict):  # a row with the wrong number of fields
            yield line, row
            continue
        try:
            data = json.loads(row["AuditData"])
        except json.JSONDecodeError:
            yield line, {"__bad__": "AuditData is not valid JSON"}
            continue
        yield (
            line,
            data if isinstance(data, dict) else {"__bad__": "AuditData is not a JSON object"},
        )


def to_events(record: Record) -> list[Event]:
    """One audit record as (at most one) event."""
    if "__bad__" in record:
        raise RowProblem(str(record["__bad__"]))
    operation = text(record.get("Operation"))
    if operation is None:
        raise RowProblem("AuditData has no Operation")
    action = _ACTIONS.get(operation)
    if action is None:
        raise Unmapped(operation)
    record_id = text(record.get("Id"))
    if record_id is None:
        raise RowProblem("AuditData has no Id")
    actor = text(record.get("UserId"))
    event = Event(
        event_id=f"{SOURCE}-{record_id}",
        time=parse_time(record.get("CreationTime"), "AuditData.CreationTime"),
        source=SOURCE,
        action=str(action),
        outcome=_outcome(record.get("ResultStatus")),
        actor=actor,
        src_ip=_address(record),
        raw=raw_json(_without_content(record)),
    )
    _details(event, action, record)
    return [event]


_CONTENT: Final = frozenset({"Subject", "Body", "Attachments"})


def _without_content(value: Any) -> Any:
    """The record without message subjects or bodies: they can carry customers' details."""
    if isinstance(value, dict):
        return {k: "[removed]" if k in _CONTENT else _without_content(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_content(v) for v in value]
    return value


def _outcome(status: object) -> str:
    if status is None or str(status).strip() == "":
        return str(Outcome.SUCCESS)  # mailbox records often carry no status: they happened
    return str(Outcome.SUCCESS if str(status).strip().lower() in _SUCCESS else Outcome.FAILURE)


def _address(record: Record) -> str | None:
    """The client address, without the port M365 sometimes appends (``1.2.3.4:5678``, ``[::1]:5``)."""
    value = (
        text(record.get("ClientIPAddress"))
        or text(record.get("ClientIP"))
        or text(record.get("ActorIpAddress"))
    )
    if value is None:
        return None
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _details(event: Event, action: Action, record: Record) -> None:
    mailbox = text(record.get("MailboxOwnerUPN"))
    if action in (Action.MAILBOX_SIGNIN, Action.MAILBOX_ACCESS, Action.EMAIL_SEND):
        event.account = mailbox
        event.target = mailbox
        event.device_id = text(record.get("ClientInfoString"))
    if action is Action.MAILBOX_ACCESS:
        sizes = [
            item.get("SizeInBytes", 0)
            for folder in record.get("Folders") or []
            for item in folder.get("FolderItems") or []
            if isinstance(item, dict)
        ]
        event.bytes = int(sum(s for s in sizes if isinstance(s, int))) or None
    if action is Action.EMAIL_SEND:
        item = record.get("Item") or {}
        size = item.get("SizeInBytes") if isinstance(item, dict) else None
        event.bytes = size if isinstance(size, int) else None
    if action in (Action.PASSWORD_CHANGE, Action.PASSWORD_RESET):
        target = text(record.get("ObjectId")) or _target_upn(record)
        event.target = target
        event.account = target
    if action is Action.MAILBOX_CHANGE:
        parameters = {
            str(p.get("Name")): p.get("Value")
            for p in record.get("Parameters") or []
            if isinstance(p, dict) and p.get("Name")
        }
        event.target = text(record.get("ObjectId")) or text(parameters.get("Identity"))
        event.account = event.target
        # Names only: a parameter's value can be anything; a forwarding address is where mail goes.
        event.fields = sorted(parameters)
        event.dest = next(
            (text(parameters[k]) for k in _FORWARDING if text(parameters.get(k))), None
        )
        event.reasons = [f"operation {record.get('Operation')}"]


def _target_upn(record: Record) -> str | None:
    for target in record.get("Target") or []:
        if isinstance(target, dict) and "@" in str(target.get("ID", "")):
            return text(target.get("ID"))
    return None
