"""Budget places are taken atomically: two workers racing for the last place cannot both win.

Each test runs on SQLite and, when configured, PostgreSQL, with two real
connections (threads), as two web workers would decide the same person at
the same instant.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Connection, update

from bpoguard.access import Verb
from bpoguard.audit import AuditSink
from bpoguard.events.lake import LakeWriter
from bpoguard.guard import usage
from bpoguard.guard.canary import CanaryListener
from bpoguard.guard.directory import shift_window
from bpoguard.guard.facts import Facts
from bpoguard.guard.policy import PolicyDecision, PolicyStore
from bpoguard.guard.service import VERIFY_ATTEMPTS, Guard, Slice
from bpoguard.ledger import Ledger
from bpoguard.store import models as m
from bpoguard.workspace import Workspace

if TYPE_CHECKING:
    from conftest import Desk, Office

SHIFT = dt.datetime(2026, 3, 10, 3, 30, tzinfo=dt.UTC)
AT = SHIFT + dt.timedelta(hours=1, minutes=10)
LIMIT = 2  # distinct customers a shift, for every desk in this module


@pytest.fixture(scope="module")
def office_home(office_home: Path) -> Path:
    """The module's BPO with a shift budget of LIMIT distinct customers."""
    with Workspace.open(office_home) as ws, ws.store.engine.begin() as conn:
        conn.execute(update(m.Contract).values(records_per_shift=LIMIT, records_per_hour=50))
    return office_home


class _Rendezvous(PolicyStore):
    """The shipped policies, but each thread's first decision waits for the other's.

    Both workers have then read the same budget before either takes a place:
    the race, made certain instead of likely.
    """

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self._barrier = barrier
        self._met = threading.local()

    def decide(self, contract_id: str, facts: Facts) -> PolicyDecision:
        decision = super().decide(contract_id, facts)
        if not getattr(self._met, "done", False):
            self._met.done = True
            self._barrier.wait(timeout=60)
        return decision


def _worker(office: Office, barrier: threading.Barrier) -> Guard:
    """A second guard on the same store, as another web worker: its own sink and lake file."""
    lake = LakeWriter(office.ws.settings.lake_dir, source="guard")
    sink = AuditSink(Ledger.for_workspace(office.ws), lake, listeners=[CanaryListener()])
    return Guard(office.store, office.vault, sink, policies=_Rendezvous(barrier))


@pytest.fixture
def workers(office: Office) -> Iterator[tuple[Guard, Guard]]:
    """Two guards that meet after reading the budget, before either takes a place."""
    barrier = threading.Barrier(2)
    yield _worker(office, barrier), _worker(office, barrier)


def _race(guards: tuple[Guard, Guard], office: Office, desk: Desk, customers: list[int],
          verb: Verb = Verb.VIEW) -> list[Slice]:  # fmt: skip
    calls = [office.call(desk, c) for c in customers]
    requests = [office.ask(desk, verb, customer_id=c, interaction_id=i)
                for c, i in zip(customers, calls, strict=True)]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(g.view, r) for g, r in zip(guards, requests, strict=True)]
        return [f.result(timeout=120) for f in futures]


def _shift_count(office: Office, desk: Desk) -> int:
    """The desk's count of distinct customers in the shift it works now."""
    directory = office.guard.directory
    staff = directory.staff(desk.staff)
    site = directory.site(staff.site_id)
    assert site is not None
    window = shift_window(site, staff.shift, desk.at)
    assert window is not None
    with office.store.engine.connect() as conn:
        return usage.read(conn, desk.staff, -1, window.start, desk.at).records_shift


def test_two_workers_racing_for_the_last_place_cannot_both_take_it(
    office: Office, workers: tuple[Guard, Guard]
) -> None:
    desk = office.desk()
    first = office.call(desk, desk.customers[0])
    assert office.guard.view(office.ask(desk, interaction_id=first)).decision.allowed
    before = office.ledger.size()
    seen = _race(workers, office, desk, desk.customers[1:3])
    allowed = [s for s in seen if s.decision.allowed]
    denied = [s for s in seen if not s.decision.allowed]
    assert len(allowed) == 1 and len(denied) == 1, [s.decision.reasons for s in seen]
    assert allowed[0].values, "the winner is served its slice"
    assert not denied[0].values, "the loser is served nothing"
    # The loser was decided again on the new count: the policy's own budget reason.
    assert any(f"shift budget of {LIMIT} distinct customers used up" in r
               for r in denied[0].decision.reasons), denied[0].decision.reasons  # fmt: skip
    assert _shift_count(office, desk) == LIMIT
    assert office.ledger.size() == before + 2, "each decision is one ledger entry"
    decisions = sorted(office.ledger.entry(i)["decision"] for i in range(before, before + 2))
    assert decisions == ["allow", "deny"]


def test_racing_views_of_the_same_new_customer_count_it_once(
    office: Office, workers: tuple[Guard, Guard]
) -> None:
    desk = office.desk()
    customer = desk.customers[0]
    seen = _race(workers, office, desk, [customer, customer])
    assert all(s.decision.allowed for s in seen), [s.decision.reasons for s in seen]
    assert _shift_count(office, desk) == 1


def test_a_take_from_a_stale_read_waits_and_takes_nothing(office: Office) -> None:
    """Two connections read the same count; the second's take waits for the first's commit."""
    staff = "RACE-USAGE-1"
    with office.store.engine.connect() as a, office.store.engine.connect() as b:
        known_a = usage.read(a, staff, 1, SHIFT, AT)
        known_b = usage.read(b, staff, 2, SHIFT, AT)
        a.begin()
        assert usage.take(a, staff, 1, SHIFT, AT, 1, known_a)
        with ThreadPoolExecutor(1) as pool:
            # b blocks on a's lock (SQLite's write lock, PostgreSQL's row lock) until a commits.
            late = pool.submit(_take_and_commit, b, staff, 2, known_b)
            a.commit()
            assert late.result(timeout=120) is False
        fresh = usage.read(b, staff, 2, SHIFT, AT)
        assert (fresh.records_shift, fresh.records_hour, fresh.reveals_shift) == (1, 1, 1)
        assert _take_and_commit(b, staff, 2, fresh) is True
        after = usage.read(b, staff, 3, SHIFT, AT)
    assert (after.records_shift, after.records_hour, after.reveals_shift) == (2, 2, 2)


def _take_and_commit(conn: Connection, staff: str, customer: int, known: usage.Usage) -> bool:
    with conn.begin():
        return usage.take(conn, staff, customer, SHIFT, AT, 1, known)


def test_a_failed_take_leaves_nothing_behind(office: Office) -> None:
    staff = "RACE-USAGE-2"
    with office.store.engine.begin() as conn:
        stale = usage.read(conn, staff, 1, SHIFT, AT)
        assert usage.take(conn, staff, 5, SHIFT, AT, 0, usage.read(conn, staff, 5, SHIFT, AT))
        # Customer 1 is new, but the counts moved: its touch rows must be put back.
        assert not usage.take(conn, staff, 1, SHIFT, AT, 2, stale)
        now = usage.read(conn, staff, 1, SHIFT, AT)
    assert (now.new_customer, now.new_in_hour) == (True, True)
    assert (now.records_shift, now.records_hour, now.reveals_shift) == (1, 1, 0)


def test_the_last_verification_attempt_goes_to_one_of_two_racing_requests(
    office: Office,
) -> None:
    interaction = 99_000_001
    with office.store.engine.begin() as conn:
        for _ in range(VERIFY_ATTEMPTS - 1):
            usage.take_verify_attempt(conn, interaction, VERIFY_ATTEMPTS)

    def attempt() -> int:
        with office.store.engine.begin() as conn:
            return usage.take_verify_attempt(conn, interaction, VERIFY_ATTEMPTS)

    with ThreadPoolExecutor(2) as pool:
        racing = [pool.submit(attempt) for _ in range(2)]
        left = sorted(f.result(timeout=120) for f in racing)
    assert left == [-1, 0]
