"""`bpoguard export ...`: a supervisor approves, lists, shows and revokes export approvals.

Each approval given or revoked is an entry in the signed ledger (see
:class:`bpoguard.guard.approvals.ApprovalBook`); the export itself is made
by the agent at their desk, through the guard (the web API's POST /exports).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated

import typer

from bpoguard.audit import AuditSink
from bpoguard.cli._common import (
    DEFAULT_HOME,
    Db,
    Home,
    Json,
    command_group,
    emit_json,
    open_workspace,
    out,
)
from bpoguard.errors import InputError
from bpoguard.events.lake import LakeWriter
from bpoguard.fields import FieldType
from bpoguard.guard import approvals
from bpoguard.guard.approvals import MAX_EXPORT, ApprovalBook, ApprovalState, ExportApproval
from bpoguard.guard.service import Guard
from bpoguard.ledger import Ledger
from bpoguard.workspace import Workspace

export_app = command_group(
    "export",
    "Export approvals: a supervisor lets one person export named customers' fields, once.",
)

By = Annotated[
    str, typer.Option("--by", help="The supervisor's staff id (who approves or revokes).")
]
Reason = Annotated[str, typer.Option("--reason", help="Why (at most 200 characters).")]
ApprovalId = Annotated[int, typer.Argument(help="The approval's id.")]

_DURATION = re.compile(r"(\d{1,4})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


@export_app.command("approve")
def approve(
    staff: Annotated[str, typer.Option("--for", help="Staff id of the person who may export.")],
    client: Annotated[str, typer.Option("--client", help="The client's organisation id.")],
    fields: Annotated[list[FieldType], typer.Option("--field", help="A field to export (repeat).")],
    by: By,
    reason: Reason,
    customer: Annotated[
        list[int] | None, typer.Option("--customer", help="A customer id (repeat).")
    ] = None,
    customers_file: Annotated[
        Path | None,
        typer.Option("--customers-file", help="A file of customer ids, one a line ('#' notes)."),
    ] = None,
    valid_for: Annotated[
        str, typer.Option("--valid-for", help="How long it may be used: 30m, 8h, 2d (at most 7d).")
    ] = "8h",
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Approve one person's export of named customers' fields, once; recorded in the ledger. [supervisor]"""
    ids = [*(customer or ()), *(_read_ids(customers_file) if customers_file else ())]
    if not ids:
        raise InputError("name the customers: --customer ID (repeat) or --customers-file FILE")
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws:
        given = _book(ws).approve(by, staff, client, ids, fields, reason, now, _duration(valid_for))
    if json_out:
        emit_json(given.as_json(now))
        return
    out.print(
        f"Approval {given.id}: {given.staff_id} may export {', '.join(f.value for f in given.fields)}"
        f" of {len(given.customer_ids)} customers of {given.client_id} once,"
        f" until {given.expires_at:%Y-%m-%d %H:%M} UTC (ledger entry {given.ledger_index})"
    )


@export_app.command("list")
def list_(
    state: Annotated[
        ApprovalState | None, typer.Option("--state", help="Only approvals in this state.")
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Only this client's.")] = None,
    staff: Annotated[str | None, typer.Option("--for", help="Only those for this person.")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Only those given by this person.")] = None,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """List export approvals, newest first: pending, used, expired or revoked. [supervisor, analyst, auditor]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        found = approvals.list_approvals(
            conn, now, state=state, client_id=client, staff_id=staff, approved_by=by
        )
    if json_out:
        emit_json({"approvals": [a.as_json(now) for a in found]})
        return
    if not found:
        out.print("No export approvals")
    for a in found:
        out.print(
            f"{a.id}  {a.state(now).value:<8}  {a.client_id}  for {a.staff_id}  by {a.approved_by}"
            f"  {len(a.customer_ids)} customers  {','.join(f.value for f in a.fields)}"
            f"  until {a.expires_at:%Y-%m-%d %H:%M} UTC"
        )


@export_app.command("show")
def show(
    approval_id: ApprovalId,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Show one export approval: its terms, its state and its ledger entries. [supervisor, analyst, auditor]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws, ws.store.engine.connect() as conn:
        found = approvals.get_approval(conn, approval_id)
    if found is None:
        raise InputError(f"no export approval {approval_id}")
    if json_out:
        emit_json(found.as_json(now))
        return
    _print(found, now)


@export_app.command("revoke")
def revoke(
    approval_id: ApprovalId,
    by: By,
    reason: Reason,
    home: Home = DEFAULT_HOME,
    db: Db = None,
    json_out: Json = False,
) -> None:
    """Withdraw an unused export approval; recorded in the ledger. [supervisor]"""
    now = dt.datetime.now(dt.UTC)
    with open_workspace(home, db) as ws:
        revoked = _book(ws).revoke(approval_id, by, reason, now)
    if json_out:
        emit_json(revoked.as_json(now))
        return
    assert revoked.revoked is not None
    out.print(
        f"Approval {revoked.id} revoked by {revoked.revoked.by}"
        f" (ledger entry {revoked.revoked.ledger_index})"
    )


def _book(ws: Workspace) -> ApprovalBook:
    ledger = Ledger.for_workspace(ws)
    # Approving decides no access, so the sink (and its lake) is never written here.
    sink = AuditSink(ledger, LakeWriter(ws.settings.lake_dir, source="cli"))
    return ApprovalBook(ws.store, Guard(ws.store, None, sink), ledger)


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InputError(f"--valid-for {text!r}: give minutes, hours or days, as 30m, 8h or 2d")
    amount, unit = match.groups()
    return dt.timedelta(**{_UNITS[unit]: int(amount)})


def _read_ids(path: Path) -> list[int]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read customer file {path}: {type(err).__name__}") from None
    ids = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.isdigit() or len(text) > 18:
            # The line is not echoed: a file of "ids" may hold something else entirely.
            raise InputError(f"{path} line {number}: not a customer id")
        ids.append(int(text))
        if len(ids) > MAX_EXPORT:
            raise InputError(f"{path}: more than {MAX_EXPORT} customers")
    return ids


def _print(a: ExportApproval, now: dt.datetime) -> None:
    out.print(f"Export approval {a.id}: {a.state(now).value}")
    out.print(f"  for        {a.staff_id}, customers of {a.client_id}")
    out.print(f"  by         {a.approved_by} at {a.approved_at:%Y-%m-%d %H:%M} UTC")
    out.print(f"  fields     {', '.join(f.value for f in a.fields)}")
    out.print(f"  customers  {len(a.customer_ids)}: {' '.join(map(str, a.customer_ids[:20]))}"
              + (" ..." if len(a.customer_ids) > 20 else ""))  # fmt: skip
    out.print(f"  reason     {a.reason}")
    out.print(f"  until      {a.expires_at:%Y-%m-%d %H:%M} UTC")
    out.print(f"  ledger     entry {a.ledger_index}" if a.ledger_index is not None
              else "  ledger     (given before approvals were ledger entries)")  # fmt: skip
    if a.used_at is not None:
        out.print(
            f"  used       {a.used_at:%Y-%m-%d %H:%M} UTC, ledger entry {a.used_ledger_index}"
        )
    if a.revoked is not None:
        r = a.revoked
        out.print(f"  revoked    by {r.by} at {r.at:%Y-%m-%d %H:%M} UTC: {r.reason}"
                  f" (ledger entry {r.ledger_index})")  # fmt: skip
