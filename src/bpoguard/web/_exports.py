"""Export approvals and exports over HTTP: a supervisor approves or revokes, an agent exports.

Approving and revoking go through :class:`~bpoguard.guard.approvals.ApprovalBook`
(the row and its ledger entry in one transaction); the export is the guard's
own verb, decided by the contract's policies and recorded like every decision.
The approver is the token's staff member, never a name in the body, and an
approval is given or revoked only from the premises of the supervisor's site.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations.
import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard.approvals import (
    MAX_EXPORT,
    MAX_VALID,
    REASON_LIMIT,
    ApprovalBook,
    ApprovalError,
    ApprovalState,
    ExportApproval,
    get_approval,
    list_approvals,
)
from bpoguard.guard.directory import StaffInfo, UnknownParty
from bpoguard.guard.service import Export, ExportRequest
from bpoguard.store import models as m
from bpoguard.web._auth import Caller, caller
from bpoguard.web._errors import ApiError
from bpoguard.web._models import Decided, Problem
from bpoguard.web._runtime import Runtime
from bpoguard.web.credentials import TokenKind

log = logging.getLogger("bpoguard.web")

ApprovalId = Annotated[int, Path(gt=0, lt=2**63, description="The approval's id.")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No token, or an unknown, expired or revoked one."},
    403: {"model": Problem, "description": "Not this caller's to do: the message says why."},
    404: {"model": Problem, "description": "No such approval (or not one the caller may see)."},
    413: {"model": Problem, "description": "Body over the size cap."},
    422: {"model": Problem, "description": "Malformed JSON, bad value, or unsound terms."},
}
_READERS = (m.StaffRole.ANALYST, m.StaffRole.AUDITOR, m.StaffRole.ADMIN)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalIn(_Body):
    """What a supervisor approves: one person, named customers, named fields, once."""

    staff_id: str = Field(min_length=1, max_length=32, description="Who may export.")
    client_id: str = Field(min_length=1, max_length=64)
    customer_ids: list[int] = Field(
        min_length=1,
        max_length=MAX_EXPORT,
        description=f"The customers' ids, at most {MAX_EXPORT:,} (this route's body cap is "
        "sized for that many; other routes keep 16 KiB).",
    )
    fields: list[FieldType] = Field(min_length=1, max_length=len(FieldType))
    reason: str = Field(min_length=1, max_length=REASON_LIMIT)
    valid_for_minutes: int = Field(
        default=8 * 60,
        gt=0,
        le=int(MAX_VALID.total_seconds() // 60),
        description="How long it may be used (at most 7 days).",
    )


class RevokeIn(_Body):
    """Why an unused approval is withdrawn."""

    reason: str = Field(min_length=1, max_length=REASON_LIMIT)


class RevocationOut(BaseModel):
    """Who withdrew an approval, when, why, and the ledger entry that says so."""

    at: dt.datetime
    by: str
    reason: str
    ledger_index: int | None


class ApprovalOut(BaseModel):
    """An export approval: its terms, its state, its ledger entries; no customer values."""

    id: int
    state: ApprovalState
    client_id: str
    staff_id: str
    approved_by: str
    customer_ids: list[int]
    fields: list[FieldType]
    reason: str
    approved_at: dt.datetime
    expires_at: dt.datetime
    ledger_index: int | None = Field(description="The entry recording it given.")
    used_at: dt.datetime | None = None
    used_ledger_index: int | None = Field(default=None, description="The export's entry.")
    revoked: RevocationOut | None = None


class ApprovalsOut(BaseModel):
    """Approvals, newest first."""

    approvals: list[ApprovalOut]


class ExportIn(_Body):
    """Export what an approval covers."""

    approval_id: int = Field(gt=0, lt=2**63)


class ExportRow(BaseModel):
    """One approved customer's approved fields, masked."""

    customer_id: int
    values: dict[FieldType, str]


class ExportOut(Decided):
    """The approved rows, masked; the approval is spent."""

    approval_id: int
    rows: list[ExportRow]


def exports_router(runtime: Runtime) -> APIRouter:
    """The routes under /exports, over the worker's guard and ledger."""
    router = APIRouter(tags=["exports"])
    book = ApprovalBook(runtime.store, runtime.guard, runtime.ledger)

    async def staff(request: Request) -> Caller:
        return caller(runtime, request, kind=TokenKind.STAFF)

    Staff = Annotated[Caller, Depends(staff)]

    @router.post(
        "/exports/approvals",
        status_code=201,
        response_model=ApprovalOut,
        responses=_ERRORS,
        description=(
            "Approve one person's export of named customers' fields, once, before it expires; "
            "recorded in the ledger (who, whom, customer ids, fields, reason, expiry). "
            "Roles: supervisor (a staff token, from the premises of their site)."
        ),
    )
    async def approve(body: ApprovalIn, who: Staff) -> ApprovalOut:
        _supervisor_on_site(runtime, who)
        now = runtime.now()
        terms = (body.staff_id, body.client_id, body.customer_ids, body.fields, body.reason)
        valid_for = dt.timedelta(minutes=body.valid_for_minutes)
        given = _checked(lambda: book.approve(who.staff_id, *terms, now, valid_for))
        log.info("export approval %s given by %s for %s", given.id, given.approved_by,
                 given.staff_id)  # fmt: skip
        return _out(given, now)

    @router.get(
        "/exports/approvals",
        response_model=ApprovalsOut,
        responses=_ERRORS,
        description=(
            "Approvals, newest first, optionally in one state. An agent sees those for them, "
            "a supervisor those they gave; analysts, auditors and admins see all. "
            "Roles: agent, supervisor, analyst, auditor, admin (a staff token)."
        ),
    )
    async def listed(
        who: Staff, state: Annotated[ApprovalState | None, Query()] = None
    ) -> ApprovalsOut:
        person = _staff(runtime, who)
        now = runtime.now()
        mine = _scope(person)
        with runtime.reading() as conn:
            found = list_approvals(conn, now, state=state, **mine)
        return ApprovalsOut(approvals=[_out(a, now) for a in found])

    @router.get(
        "/exports/approvals/{approval_id}",
        response_model=ApprovalOut,
        responses=_ERRORS,
        description=(
            "One approval, to the person it is for, the supervisor who gave it, or an "
            "analyst, auditor or admin. Roles: agent, supervisor, analyst, auditor, admin."
        ),
    )
    async def shown(approval_id: ApprovalId, who: Staff) -> ApprovalOut:
        return _out(_visible(runtime, who, approval_id), runtime.now())

    @router.post(
        "/exports/approvals/{approval_id}/revoke",
        response_model=ApprovalOut,
        responses={**_ERRORS, 409: {"model": Problem, "description": "Used, expired or revoked."}},
        description=(
            "Withdraw an unused approval; recorded in the ledger. Roles: supervisor (the "
            "approver, or a supervisor of a site the client's contract allows; from the "
            "premises of their site)."
        ),
    )
    async def revoke(approval_id: ApprovalId, body: RevokeIn, who: Staff) -> ApprovalOut:
        _supervisor_on_site(runtime, who)
        now = runtime.now()
        with runtime.reading() as conn:
            found = get_approval(conn, approval_id)
        if found is None:
            raise ApiError(404, "not_found", f"no export approval {approval_id}")
        if found.state(now) is not ApprovalState.PENDING:
            state = found.state(now).value
            raise ApiError(409, "conflict", f"approval {approval_id} is {state}: not revoked")
        revoked = _checked(lambda: book.revoke(approval_id, who.staff_id, body.reason, now))
        log.info("export approval %s revoked by %s", approval_id, who.staff_id)
        return _out(revoked, now)

    @router.post(
        "/exports",
        response_model=ExportOut,
        responses={**_ERRORS, 409: {"model": Problem, "description": "Spent just now."}},
        description=(
            "Export what an approval covers: the approved fields of the approved customers, "
            "masked, once. Decided by the contract's policies like every read (premises, "
            "device, shift, leaver) and recorded; a denial does not spend the approval. "
            "Roles: agent, supervisor (a staff token: the person the approval names)."
        ),
    )
    async def export(body: ExportIn, who: Staff) -> ExportOut:
        request = ExportRequest(who.staff_id, body.approval_id, runtime.now(), who.source_ip,
                                who.device_id)  # fmt: skip
        done = _export(runtime, request)
        decision = done.decision
        if not decision.allowed:
            log.info("denied export under approval %s by %s from %s: %s", body.approval_id,
                     who.staff_id, who.source_ip, "; ".join(decision.reasons))  # fmt: skip
            raise ApiError(403, "denied", decision.reasons[0] if decision.reasons else "denied",
                           decision.reasons, decision.ledger_index)  # fmt: skip
        rows = [ExportRow(customer_id=r.customer_id, values=r.values) for r in done.rows]
        return ExportOut(allowed=True, reasons=list(decision.reasons),
                         ledger_index=decision.ledger_index, approval_id=body.approval_id,
                         rows=rows)  # fmt: skip

    return router


def _export(runtime: Runtime, request: ExportRequest) -> Export:
    runtime.tick()
    for attempt in (1, 2):
        try:
            return runtime.guard.export(request)
        except UnknownParty:  # someone HR added since the last reload: reload once
            if attempt == 2:
                raise ApiError(403, "denied", f"unknown staff member {request.staff_id}") from None
            runtime.refresh()
        except InputError as err:
            if str(err).startswith("no export approval"):
                raise ApiError(404, "not_found", str(err)) from None
            raise ApiError(409, "conflict", str(err)) from None
    raise AssertionError("unreachable")


def _staff(runtime: Runtime, who: Caller) -> StaffInfo:
    try:
        return runtime.guard.directory.staff(who.staff_id)
    except UnknownParty:
        runtime.refresh()
    try:
        return runtime.guard.directory.staff(who.staff_id)
    except UnknownParty:
        raise ApiError(403, "denied", f"unknown staff member {who.staff_id}") from None


def _supervisor_on_site(runtime: Runtime, who: Caller) -> None:
    person = _staff(runtime, who)
    if person.role is not m.StaffRole.SUPERVISOR:
        log.warning("refused export approval by %s: a %s", who.staff_id, person.role.value)
        raise ApiError(403, "denied", f"{who.staff_id} is not a supervisor: only a supervisor "
                       "approves or revokes an export")  # fmt: skip
    site = runtime.guard.directory.premises_of(who.source_ip)
    if person.site_id is None or site != person.site_id:
        log.warning("refused export approval by %s from %s: off premises", who.staff_id,
                    who.source_ip)  # fmt: skip
        raise ApiError(403, "denied", f"source {who.source_ip} is outside the premises of site "
                       f"{person.site_id}: approvals are given on site")  # fmt: skip


def _scope(person: StaffInfo) -> dict[str, str]:
    """Whose approvals a person may list."""
    if person.role is m.StaffRole.SUPERVISOR:
        return {"approved_by": person.id}
    if person.role in _READERS:
        return {}
    return {"staff_id": person.id}


def _visible(runtime: Runtime, who: Caller, approval_id: int) -> ExportApproval:
    person = _staff(runtime, who)
    with runtime.reading() as conn:
        found = get_approval(conn, approval_id)
    if found is None or not (
        person.role in _READERS or person.id in (found.staff_id, found.approved_by)
    ):
        # The same answer either way: ids of others' approvals are not confirmed.
        raise ApiError(404, "not_found", f"no export approval {approval_id}")
    return found


def _checked(give: Any) -> ExportApproval:
    try:
        result: ExportApproval = give()
    except (ApprovalError, UnknownParty) as err:
        raise ApiError(422, "invalid_request", str(err)) from None
    return result


def _out(a: ExportApproval, at: dt.datetime) -> ApprovalOut:
    revoked = None
    if a.revoked is not None:
        r = a.revoked
        revoked = RevocationOut(at=r.at, by=r.by, reason=r.reason, ledger_index=r.ledger_index)
    return ApprovalOut(
        id=a.id, state=a.state(at), client_id=a.client_id, staff_id=a.staff_id,
        approved_by=a.approved_by, customer_ids=list(a.customer_ids), fields=list(a.fields),
        reason=a.reason, approved_at=a.approved_at, expires_at=a.expires_at,
        ledger_index=a.ledger_index, used_at=a.used_at, used_ledger_index=a.used_ledger_index,
        revoked=revoked,
    )  # fmt: skip
