"""Group commit when the commit itself fails: the event lake holds only committed decisions.

The failure is real: a listener (the plug-in point detection and canaries use)
writes a row whose foreign key SQLite checks only at COMMIT
(``PRAGMA defer_foreign_keys``), so the group's commit raises IntegrityError
after every ledger entry was appended, and the group is rolled back whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Connection, text

from bpoguard.access import AccessRequest, Verb
from bpoguard.audit import DecisionRecord
from bpoguard.events.lake import LakeWriter
from bpoguard.guard.canary import CanaryListener
from bpoguard.ledger import Ledger
from bpoguard.web._group import GroupCommit
from bpoguard.web._runtime import Runtime
from bpoguard.workspace import Workspace
from web._world import Desk, Web

NO_SUCH_CUSTOMER = 9_000_000_000


class _PoisonAtCommit:
    """For decisions in one interaction, writes a row that fails the commit, not the insert."""

    def __init__(self, interaction_id: int) -> None:
        self.interaction_id = interaction_id

    def on_decision(self, conn: Connection, record: DecisionRecord, ledger_index: int) -> None:
        if record.interaction_id != self.interaction_id:
            return
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")  # reset by SQLite at commit
        conn.execute(
            text(
                "INSERT INTO guard_disclosures (ledger_index, staff_id, verb, customer_id, at) "
                "VALUES (:i, :s, 'view', :c, :t)"
            ),
            {"i": ledger_index, "s": record.staff_id, "c": NO_SUCH_CUSTOMER, "t": record.at},
        )


def _runtime(web: Web) -> Runtime:
    runtime: Runtime = web.app.state.runtime
    return runtime


def _size(web: Web) -> int:
    with Workspace.open(web.home) as ws:
        return Ledger.for_workspace(ws).size()


def _request(web: Web, desk: Desk, call: int) -> AccessRequest:
    return AccessRequest(desk.staff, Verb.VIEW, desk.customers[0], desk.fields, web.clock.at,
                         desk.ip, desk.device, call)  # fmt: skip


def _lake_ids(lake_dir: Path) -> list[str]:
    ids: list[str] = []
    for path in sorted(lake_dir.glob("day=*/*.parquet")):
        ids.extend(pq.read_table(path, columns=["event_id"]).column("event_id").to_pylist())
    return ids


@pytest.fixture
def calls(web: Web) -> Iterator[list[int]]:
    """Calls a test opens; closed afterwards, so later tests find their desks free."""
    opened: list[int] = []
    yield opened
    for call in opened:
        _runtime(web).guard.close_interaction(call, web.clock.at)


def _group(web: Web, lake: LakeWriter, poison: _PoisonAtCommit) -> GroupCommit:
    runtime = _runtime(web)
    return GroupCommit(
        runtime.store, runtime.guard, runtime.ledger, lake, [CanaryListener(), poison]
    )


def test_a_group_whose_commit_fails_leaves_no_lake_row_and_no_duplicate(
    web: Web, calls: list[int], tmp_path: Path
) -> None:
    desk = web.desk()
    good, poisoned, other = (web.open_call(desk) for _ in range(3))
    calls.extend([good, poisoned, other])
    lake = LakeWriter(tmp_path / "lake", source="web")
    group = _group(web, lake, _PoisonAtCommit(poisoned))
    before = _size(web)

    async def together() -> list[Any]:
        runs = (group.run(lambda g, c=c: g.view(_request(web, desk, c)))  # type: ignore[misc]
                for c in (good, poisoned, other))  # fmt: skip
        return list(await asyncio.gather(*runs, return_exceptions=True))

    first, failed, third = asyncio.run(together())
    lake.commit()
    assert type(failed).__name__ == "IntegrityError", failed
    assert first.decision.allowed and third.decision.allowed
    committed = sorted([first.decision.ledger_index, third.decision.ledger_index])
    # The group was rolled back whole; the two good calls were committed alone, the
    # poisoned one failed again alone: two entries, and exactly their two lake rows.
    assert committed == [before, before + 1]
    assert _size(web) == before + 2
    ids = _lake_ids(tmp_path / "lake")
    assert sorted(ids) == [f"ledger-{i}" for i in committed]
    assert group.groups == 2 and group.calls == 2


def test_a_group_that_commits_writes_one_lake_row_per_decision_after_the_commit(
    web: Web, calls: list[int], tmp_path: Path
) -> None:
    desk = web.desk()
    opened = [web.open_call(desk) for _ in range(3)]
    calls.extend(opened)
    lake = LakeWriter(tmp_path / "lake", source="web")
    group = _group(web, lake, _PoisonAtCommit(-1))
    before = _size(web)

    async def together() -> list[Any]:
        runs = (group.run(lambda g, c=c: g.view(_request(web, desk, c)))  # type: ignore[misc]
                for c in opened)  # fmt: skip
        return list(await asyncio.gather(*runs))

    answers = asyncio.run(together())
    lake.commit()
    assert group.groups == 1
    assert [a.decision.ledger_index for a in answers] == [before, before + 1, before + 2]
    assert _lake_ids(tmp_path / "lake") == [f"ledger-{before + i}" for i in range(3)]


def test_a_lone_call_whose_commit_fails_is_answered_with_the_error_and_leaves_nothing(
    web: Web, calls: list[int], tmp_path: Path
) -> None:
    desk = web.desk()
    poisoned = web.open_call(desk)
    calls.append(poisoned)
    lake = LakeWriter(tmp_path / "lake", source="web")
    group = _group(web, lake, _PoisonAtCommit(poisoned))
    before = _size(web)

    async def alone() -> Any:
        return await group.run(lambda g: g.view(_request(web, desk, poisoned)))

    with pytest.raises(Exception, match="FOREIGN KEY constraint failed"):
        asyncio.run(alone())
    lake.commit()
    assert _size(web) == before
    assert _lake_ids(tmp_path / "lake") == []
