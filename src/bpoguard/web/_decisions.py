"""Asking the guard on a caller's behalf: view, reveal, verify, and the CRM's interactions.

Shared by the REST API and the agent desktop, so that both decide the same
way. A denial becomes an :class:`ApiError` (403) carrying the guard's reasons
and ledger index; the guard has already recorded it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import NoReturn, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from bpoguard.access import AccessRequest, Decision, InteractionStart, Verb
from bpoguard.errors import InputError
from bpoguard.fields import FieldType
from bpoguard.guard.directory import UnknownParty
from bpoguard.guard.service import (
    BULK,
    SEARCHABLE,
    Guard,
    Revealed,
    SearchRequest,
    SearchResult,
    Slice,
    Verification,
)
from bpoguard.store import models as m
from bpoguard.web._auth import Caller
from bpoguard.web._errors import ApiError
from bpoguard.web._models import InteractionIn, InteractionOut
from bpoguard.web._runtime import Runtime

log = logging.getLogger("bpoguard.web")
T = TypeVar("T")


async def view(
    runtime: Runtime,
    caller: Caller,
    customer_id: int,
    interaction_id: int,
    fields: list[FieldType] | None,
) -> Slice:
    """The masked slice, or 403 with the guard's reasons."""
    wanted = tuple(fields) if fields else _purpose_fields(runtime, interaction_id)
    request = _request(runtime, caller, Verb.VIEW, customer_id, wanted, interaction_id)
    result = await _ask(runtime, lambda guard: guard.view(request))
    _check(result.decision, request)
    return result


async def reveal(
    runtime: Runtime,
    caller: Caller,
    customer_id: int,
    interaction_id: int,
    field: FieldType,
    reason: str,
) -> Revealed:
    """One field in the clear, or 403 with the guard's reasons."""
    request = _request(runtime, caller, Verb.REVEAL, customer_id, (field,), interaction_id, reason)
    result = await _ask(runtime, lambda guard: guard.reveal(request))
    _check(result.decision, request)
    return result


async def verify(
    runtime: Runtime,
    caller: Caller,
    customer_id: int,
    interaction_id: int,
    field: FieldType,
    answer: str,
) -> Verification:
    """Match or no match, or 403 (not allowed, or no attempts left) with the reasons."""
    request = _request(runtime, caller, Verb.VERIFY, customer_id, (field,), interaction_id)
    result = await _ask(runtime, lambda guard: guard.verify(request, answer))
    _check(result.decision, request)
    return result


async def search(
    runtime: Runtime,
    caller: Caller,
    interaction_id: int,
    field: FieldType,
    value: str,
    client_id: str | None,
    fields: list[FieldType] | None,
) -> SearchResult:
    """Masked rows of the customers an exact value finds, or 403 with the guard's reasons."""
    if field not in SEARCHABLE:
        known = ", ".join(sorted(f.value for f in SEARCHABLE))
        _refuse_search(runtime, caller, 422, f"denied: search by {known}; not by {field.value}")
    client = client_id or _client_of(runtime, interaction_id)
    if client is None:
        _refuse_search(
            runtime, caller, 403, f"denied: no interaction {interaction_id} to search for"
        )
    request = SearchRequest(
        staff_id=caller.staff_id,
        client_id=client,
        field=field,
        value=value,
        at=runtime.now(),
        source_ip=caller.source_ip,
        device_id=caller.device_id,
        interaction_id=interaction_id,
        fields=tuple(fields or ()),
    )
    result = await _ask(runtime, lambda guard: guard.search(request), grouped=False)
    access = AccessRequest(caller.staff_id, Verb.SEARCH, BULK, (field,), request.at,
                           caller.source_ip, caller.device_id, interaction_id)  # fmt: skip
    _check(result.decision, access)
    return result


def _refuse_search(runtime: Runtime, caller: Caller, status: int, reason: str) -> NoReturn:
    with runtime.sink.transaction(runtime.store.engine) as conn:
        index = runtime.refuse(
            conn, staff_id=caller.staff_id, verb=Verb.SEARCH, customer_id=BULK,
            source_ip=caller.source_ip, device_id=caller.device_id, reason=reason,
        )  # fmt: skip
    code = "denied" if status == 403 else "invalid_request"
    raise ApiError(status, code, reason, (reason,), index)


def _client_of(runtime: Runtime, interaction_id: int) -> str | None:
    try:
        found = interaction(runtime, interaction_id)
        return runtime.guard.directory.contract(found.contract_id).client_id
    except (ApiError, UnknownParty):
        return None


def open_interaction(runtime: Runtime, body: InteractionIn) -> InteractionOut:
    """Record a call the CRM opened; 404 for unknown parties, 409 for a used id."""
    directory = runtime.guard.directory
    contract = _known(lambda: directory.contract(body.contract_id))
    _known(lambda: _staff(runtime, body.staff_id))
    with runtime.store.engine.connect() as conn:
        client = conn.execute(
            select(m.Customer.client_id).where(m.Customer.id == body.customer_id)
        ).scalar()
    if client is None:
        raise ApiError(404, "not_found", f"unknown customer {body.customer_id}")
    if client != contract.client_id:
        raise ApiError(
            422, "invalid_request", f"customer {body.customer_id} is not covered by {contract.id}"
        )
    at = runtime.now()
    start = InteractionStart(
        body.id, body.contract_id, body.staff_id, body.customer_id, body.purpose, body.channel, at
    )
    try:
        runtime.guard.open_interaction(start)
    except IntegrityError:
        raise ApiError(409, "conflict", f"interaction {body.id} already exists") from None
    except InputError as err:
        raise ApiError(422, "invalid_request", str(err)) from None
    return interaction(runtime, body.id)


def close_interaction(runtime: Runtime, interaction_id: int) -> InteractionOut:
    """Record that a call ended; reads in it are refused from then on."""
    found = interaction(runtime, interaction_id)
    if found.closed_at is not None:
        raise ApiError(409, "conflict", f"interaction {interaction_id} is already closed")
    runtime.guard.close_interaction(interaction_id, runtime.now())
    return interaction(runtime, interaction_id)


def interaction(runtime: Runtime, interaction_id: int) -> InteractionOut:
    """An interaction by id, or 404."""
    with runtime.store.engine.connect() as conn:
        row = conn.execute(select(m.Interaction).where(m.Interaction.id == interaction_id)).first()
    if row is None:
        raise ApiError(404, "not_found", f"unknown interaction {interaction_id}")
    return _out(runtime, row)


def current_interaction(runtime: Runtime, staff_id: str) -> InteractionOut | None:
    """The caller's newest open interaction, if any."""
    query = (
        select(m.Interaction)
        .where(m.Interaction.staff_id == staff_id, m.Interaction.closed_at.is_(None))
        .order_by(m.Interaction.opened_at.desc(), m.Interaction.id.desc())
        .limit(1)
    )
    with runtime.store.engine.connect() as conn:
        row = conn.execute(query).first()
    return _out(runtime, row) if row is not None else None


def _out(runtime: Runtime, row: object) -> InteractionOut:
    r = row._mapping  # type: ignore[attr-defined]
    purpose = None
    with contextlib.suppress(UnknownParty):
        purpose = runtime.guard.directory.contract(r["contract_id"]).purposes.get(r["purpose"])
    return InteractionOut(
        id=r["id"],
        contract_id=r["contract_id"],
        staff_id=r["staff_id"],
        customer_id=r["customer_id"],
        purpose=r["purpose"],
        channel=r["channel"],
        opened_at=r["opened_at"],
        closed_at=r["closed_at"],
        fields=sorted(purpose.fields) if purpose else [],
        revealable=sorted(purpose.revealable) if purpose else [],
    )


def _purpose_fields(runtime: Runtime, interaction_id: int) -> tuple[FieldType, ...]:
    """The fields the interaction's purpose shows; every field when it is unknown (denied)."""
    known = runtime.purposes.get(interaction_id)
    if known is None:
        with runtime.reading() as conn:
            row = conn.execute(_PURPOSE_OF, {"id": interaction_id}).first()
        if row is None:
            return tuple(FieldType)  # not remembered: it may be opened later
        if len(runtime.purposes) >= _PURPOSES_KEPT:
            runtime.purposes.clear()
        known = runtime.purposes[interaction_id] = (row.contract_id, row.purpose)
    contract_id, name = known
    try:
        purpose = runtime.guard.directory.contract(contract_id).purposes.get(name)
    except UnknownParty:
        purpose = None
    return tuple(sorted(purpose.fields)) if purpose else tuple(FieldType)


_PURPOSES_KEPT = 50_000  # interactions whose purpose a worker remembers (a day's calls)
# Built once: the hot path (a view without fields) reads just these two columns.
_PURPOSE_OF = select(m.Interaction.contract_id, m.Interaction.purpose).where(
    m.Interaction.id == bindparam("id")
)


def _request(
    runtime: Runtime,
    caller: Caller,
    verb: Verb,
    customer_id: int,
    fields: tuple[FieldType, ...],
    interaction_id: int,
    reason: str | None = None,
) -> AccessRequest:
    return AccessRequest(
        staff_id=caller.staff_id,
        verb=verb,
        customer_id=customer_id,
        fields=fields,
        at=runtime.now(),
        source_ip=caller.source_ip,
        device_id=caller.device_id,
        interaction_id=interaction_id,
        reason=reason,
    )


async def _ask(runtime: Runtime, call: Callable[[Guard], T], grouped: bool = True) -> T:
    """Call the guard (committed with the calls that arrived with it, unless not
    `grouped`); a staff member it does not know yet gets one directory reload."""
    runtime.tick()
    try:
        return await runtime.group.run(call) if grouped else call(runtime.guard)
    except UnknownParty:
        runtime.refresh()
    except InputError as err:
        raise ApiError(422, "invalid_request", str(err)) from None
    try:
        return call(runtime.guard)
    except InputError as err:
        raise ApiError(403, "denied", str(err)) from None


def _check(decision: Decision, request: AccessRequest) -> None:
    if decision.allowed:
        return
    log.info(
        "denied %s of customer %s by %s from %s: %s",
        request.verb.value,
        request.customer_id,
        request.staff_id,
        request.source_ip,
        "; ".join(decision.reasons),
    )
    raise ApiError(
        403,
        "denied",
        decision.reasons[0] if decision.reasons else "denied",
        decision.reasons,
        decision.ledger_index,
    )


def _staff(runtime: Runtime, staff_id: str) -> None:
    try:
        runtime.guard.directory.staff(staff_id)
    except UnknownParty:
        runtime.refresh()
        runtime.guard.directory.staff(staff_id)


def _known(call: Callable[[], T]) -> T:
    try:
        return call()
    except UnknownParty as err:
        raise ApiError(404, "not_found", str(err)) from None
