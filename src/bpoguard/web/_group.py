"""Group commit: the decisions a worker is asked for together are committed together.

A worker's handlers run one at a time on its event loop. Requests that arrive
in the same turn of the loop each hand their guard call to :class:`GroupCommit`
and wait; at the end of that turn the calls run one after another in **one**
transaction, through the guard bound to it (:meth:`Guard.bound`) and a sink
that appends all their ledger entries together, and the transaction commits.
Only then is any of them answered: no response is ever sent for a decision
whose ledger entry could still be lost. Each call sees the budget charges of
the calls before it, exactly as if they had come one after another.

What it saves is per-transaction work: one ledger append (frontier read,
Merkle nodes, head update) and one commit for the group instead of one each,
and one wait for SQLite's write lock. Nothing waits for a group to fill: a
request alone is committed alone, in the same turn of the loop.

If any call in a group raises, or the commit itself fails, the whole group is
rolled back (nothing of it was written) and each call is run again alone, in
its own transaction, so one bad request cannot fail the others. A busy or
unreachable database fails the whole group (each request answers 503, nothing
written): running each again would only wait for the same lock once per
request.

The decisions' event-lake rows are written only once their transaction has
committed. The lake is not transactional: a row written before a commit that
then failed would describe a decision the ledger does not hold, and the call's
re-run alone would add a second row under the same ledger index (``ledger-N``,
since a rolled-back append gives its indexes to the next one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from bpoguard.audit import AuditSink, DecisionListener, DecisionRecord
from bpoguard.events.lake import LakeWriter
from bpoguard.guard.service import Guard
from bpoguard.ledger import Ledger
from bpoguard.store import Store

T = TypeVar("T")
Call = Callable[[Guard], Any]

DEFAULT_LIMIT = 32  # calls in one transaction: bounds how long a group holds the write lock


class _GroupSink(AuditSink):
    """Buffers a group's decisions until flush (one ledger append for all), counting them.

    Run inside :meth:`AuditSink.transaction`, so their lake rows are written only
    once the group's transaction has committed.
    """

    def __init__(
        self, ledger: Ledger, lake: LakeWriter, listeners: Sequence[DecisionListener]
    ) -> None:
        super().__init__(ledger, lake, batch=sys.maxsize, listeners=listeners)
        self.emitted = 0

    def emit(self, conn: Connection, record: DecisionRecord) -> int | None:
        """Buffer the decision (its ledger index is known at flush)."""
        self.emitted += 1
        return super().emit(conn, record)


class _NotOneDecision(Exception):
    """A call emitted no decision or several: its ledger index cannot be matched."""


@dataclasses.dataclass
class _Pending:
    call: Call
    future: asyncio.Future[Any]


class GroupCommit:
    """Runs the guard calls that arrive in one turn of the event loop in one transaction."""

    def __init__(
        self,
        store: Store,
        guard: Guard,
        ledger: Ledger,
        lake: LakeWriter,
        listeners: Sequence[DecisionListener],
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._store = store
        self._guard = guard
        self._ledger = ledger
        self._lake = lake
        self._listeners = tuple(listeners)
        self._limit = max(1, limit)
        self._pending: list[_Pending] = []
        self._scheduled = False
        self.groups = 0  # transactions committed, and the calls in them (for tests, figures)
        self.calls = 0

    async def run(self, call: Callable[[Guard], T]) -> T:
        """The call's answer, once its decision and ledger entry are committed.

        The answer is a dataclass with a ``decision`` (a slice, a revealed value, a
        verification); the call must make exactly one decision.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Pending(call, future))
        if not self._scheduled:
            # call_soon runs after every task already ready in this turn of the loop:
            # the requests that arrived together join the group; none waits longer.
            self._scheduled = True
            loop.call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        self._scheduled = False
        group = [p for p in self._pending[: self._limit] if not p.future.cancelled()]
        del self._pending[: self._limit]
        if self._pending:  # answer this group first; the rest go in the next turn
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)
        if group:
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            answers, indexes = self._together([p.call for p in group])
        except OperationalError as err:
            for pending in group:
                pending.future.set_exception(err)
            return
        except Exception:  # rolled back whole (a call or the commit failed): each alone
            for pending in group:
                self._alone(pending)
            return
        for pending, answer, index in zip(group, answers, indexes, strict=True):
            _answer(pending, answer, index)

    def _together(self, calls: list[Call], strict: bool = True) -> tuple[list[Any], list[int]]:
        """Run the calls in one transaction; their answers and ledger indexes once committed.

        `strict`: each call must make exactly one decision (so that answers and
        indexes pair up); a call run alone may make any number.
        """
        sink = _GroupSink(self._ledger, self._lake, self._listeners)
        answers = []
        with sink.transaction(self._store.engine) as conn:  # lake rows after the commit
            guard = self._guard.bound(conn, sink)
            for call in calls:
                before = sink.emitted
                answers.append(call(guard))
                if strict and sink.emitted != before + 1:
                    raise _NotOneDecision
            indexes = sink.flush(conn)
        # Committed: now, and only now, may the answers leave.
        self.groups += 1
        self.calls += len(calls)
        return answers, indexes

    def _alone(self, pending: _Pending) -> None:
        try:
            answers, indexes = self._together([pending.call], strict=False)
        except Exception as err:  # handed to the request that asked
            pending.future.set_exception(err)
            return
        if len(indexes) == 1:
            _answer(pending, answers[0], indexes[0])
        else:  # no single decision to cite (not a guard verb's call): the answer as it is
            pending.future.set_result(answers[0])


def _answer(pending: _Pending, answer: Any, index: int) -> None:
    """Hand a committed call its answer, carrying its decision's ledger index."""
    try:
        indexed = _indexed(answer, index)
    except Exception as err:  # committed: it must not run again, only be answered
        pending.future.set_exception(err)
    else:
        pending.future.set_result(indexed)


def _indexed(answer: Any, index: int) -> Any:
    """The answer with its decision's ledger index, known once the group was appended."""
    decision = dataclasses.replace(answer.decision, ledger_index=index)
    return dataclasses.replace(answer, decision=decision)
