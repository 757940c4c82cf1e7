"""Group commit: decisions asked for together are committed together, and answered after.

The calls go to the worker's real GroupCommit over the real guard, store and
ledger; the ledger is read back to check what each answer claims.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from bpoguard.access import AccessRequest, Verb
from bpoguard.fields import FieldType
from bpoguard.guard.service import Guard, Slice
from bpoguard.ledger import Ledger
from bpoguard.web._runtime import Runtime
from bpoguard.workspace import Workspace
from web._world import Desk, Web, headers


def _runtime(web: Web) -> Runtime:
    runtime: Runtime = web.app.state.runtime
    return runtime


def _request(web: Web, desk: Desk, call: int, fields: tuple[FieldType, ...] | None = None) -> Any:
    return AccessRequest(desk.staff, Verb.VIEW, desk.customers[0], fields or desk.fields,
                         web.clock.at, desk.ip, desk.device, call)  # fmt: skip


def _entries(web: Web, indexes: list[int]) -> list[dict[str, Any]]:
    with Workspace.open(web.home) as ws:
        ledger = Ledger.for_workspace(ws)
        return [ledger.entry(i) for i in indexes]


@pytest.fixture
def opened(web: Web) -> Iterator[list[int]]:
    """Calls a test opens; closed afterwards, so later tests find their desks free."""
    calls: list[int] = []
    yield calls
    for call in calls:
        _runtime(web).guard.close_interaction(call, web.clock.at)


def _open(web: Web, desk: Desk, opened: list[int]) -> int:
    call = web.open_call(desk)
    opened.append(call)
    return call


def _size(web: Web) -> int:
    with Workspace.open(web.home) as ws:
        return Ledger.for_workspace(ws).size()


def test_calls_asked_together_commit_in_one_transaction_each_with_its_entry(
    web: Web, opened: list[int]
) -> None:
    desk = web.desk()
    calls = [_open(web, desk, opened) for _ in range(5)]
    runtime = _runtime(web)
    groups, before = runtime.group.groups, _size(web)

    async def together() -> list[Slice]:
        def view(call: int) -> Any:
            return lambda guard: guard.view(_request(web, desk, call))

        return list(await asyncio.gather(*(runtime.group.run(view(c)) for c in calls)))

    slices = asyncio.run(together())
    assert runtime.group.groups == groups + 1  # one transaction for the five
    assert all(s.decision.allowed and s.values for s in slices)
    indexes = [s.decision.ledger_index for s in slices]
    assert indexes == list(range(before, before + 5))  # in the order asked, none missing
    assert _size(web) == before + 5
    for entry, call in zip(_entries(web, indexes), calls, strict=True):  # type: ignore[arg-type]
        assert entry["staff"] == desk.staff and entry["interaction"] == call
        assert entry["decision"] == "allow"


def test_one_failing_call_does_not_fail_the_others(web: Web, opened: list[int]) -> None:
    desk = web.desk()
    good, other = _open(web, desk, opened), _open(web, desk, opened)
    runtime = _runtime(web)
    before = _size(web)

    def bad(guard: Guard) -> Any:
        # Reveal takes one field: the guard raises before deciding anything.
        return guard.reveal(_request(web, desk, good, desk.fields[:2]))

    async def together() -> list[Any]:
        return list(
            await asyncio.gather(
                runtime.group.run(lambda guard: guard.view(_request(web, desk, good))),
                runtime.group.run(bad),
                runtime.group.run(lambda guard: guard.view(_request(web, desk, other))),
                return_exceptions=True,
            )
        )

    first, failed, third = asyncio.run(together())
    assert isinstance(failed, Exception) and "one field" in str(failed)
    assert first.decision.allowed and third.decision.allowed
    # The group was rolled back whole, then each asked alone: two entries, no gap.
    assert sorted([first.decision.ledger_index, third.decision.ledger_index]) == [
        before,
        before + 1,
    ]
    assert _size(web) == before + 2


def test_a_busy_database_fails_the_group_whole_and_writes_nothing(
    web: Web, opened: list[int]
) -> None:
    desk = web.desk()
    call = _open(web, desk, opened)
    runtime = _runtime(web)
    before = _size(web)
    holder = sqlite3.connect(web.home / "bpoguard.db", timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    engine = runtime.store.engine
    try:
        engine.pool.dispose()

        def short_wait(dbapi: Any, _: Any) -> None:
            dbapi.execute("PRAGMA busy_timeout=50")

        event.listen(engine, "connect", short_wait)
        try:

            async def together() -> list[Any]:
                def view(_: int) -> Any:
                    return lambda guard: guard.view(_request(web, desk, call))

                runs = (runtime.group.run(view(n)) for n in range(3))
                return list(await asyncio.gather(*runs, return_exceptions=True))

            answers = asyncio.run(together())
        finally:
            event.remove(engine, "connect", short_wait)
            engine.pool.dispose()
    finally:
        holder.rollback()
        holder.close()
    assert all(type(a).__name__ == "OperationalError" for a in answers)
    assert _size(web) == before


def test_concurrent_views_over_http_each_answer_their_own_committed_entry(
    web: Web, opened: list[int]
) -> None:
    desks = [web.desk() for _ in range(3)]
    calls = [_open(web, d, opened) for d in desks]
    before = _size(web)

    async def concurrently() -> list[httpx.Response]:
        async def one(desk: Desk, call: int) -> httpx.Response:
            transport = httpx.ASGITransport(app=web.app, client=(desk.ip, 40123))
            async with httpx.AsyncClient(transport=transport, base_url="http://guard") as c:
                return await c.post(
                    f"/api/v1/customers/{desk.customers[0]}/view",
                    headers=headers(desk),
                    json={"interaction_id": call},
                )

        # Each desk views twice; their credentials were minted at their own shift's time.
        web.clock.at = desks[0].at
        return list(
            await asyncio.gather(
                *(one(d, c) for d, c in zip(desks, calls, strict=True) for _ in "ab")
            )
        )

    responses = asyncio.run(concurrently())
    bodies = [r.json() for r in responses]
    assert all(r.status_code in (200, 403) for r in responses), bodies
    indexes = [b["ledger_index"] for b in bodies]
    assert len(set(indexes)) == len(indexes) == 6
    assert _size(web) == before + 6
    for body, entry in zip(bodies, _entries(web, indexes), strict=True):
        assert entry["decision"] == ("allow" if body.get("allowed") is True else "deny")


@pytest.mark.parametrize("limit", [1, 2])
def test_a_group_never_holds_more_than_its_limit(web: Web, opened: list[int], limit: int) -> None:
    desk = web.desk()
    call = _open(web, desk, opened)
    runtime = _runtime(web)
    saved = runtime.group._limit
    runtime.group._limit = limit
    groups = runtime.group.groups
    try:

        async def together() -> None:
            def view(_: int) -> Any:
                return lambda guard: guard.view(_request(web, desk, call))

            await asyncio.gather(*(runtime.group.run(view(n)) for n in range(4)))

        asyncio.run(together())
    finally:
        runtime.group._limit = saved
    assert runtime.group.groups == groups + 4 // limit
