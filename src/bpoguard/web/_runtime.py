"""The parts a web worker decides with: the real guard over the workspace's store,
vault, ledger and event lake, and the audit sink every decision goes through.

One runtime per worker process. Handlers run on the worker's event loop one
at a time, so the guard, its sink and the lake writer are never used by two
threads at once; the decisions asked for together are committed together
(:mod:`bpoguard.web._group`); more throughput comes from more workers
(``--workers``), which share the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator, Sequence

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from bpoguard.access import Verb
from bpoguard.audit import AuditSink, DecisionListener, DecisionRecord
from bpoguard.detect.instant import InstantRules
from bpoguard.events.lake import LakeWriter
from bpoguard.guard import canary
from bpoguard.guard.directory import UnknownParty
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.service import Guard
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.web._group import GroupCommit
from bpoguard.web._settings import WebSettings
from bpoguard.workspace import Workspace

log = logging.getLogger("bpoguard.web")


def decision_listeners() -> Sequence[DecisionListener]:
    """Who is told of every decision, inside its transaction.

    The canary listener records touches of canary customers; detection's
    instant rules raise the alerts that need no history (canary touched,
    access after leaving, from outside the premises, reveal without a call)
    in the same transaction, so the alert exists when the response is sent.
    """
    return [canary.CanaryListener(), InstantRules()]


class Runtime:
    """A worker's guard, and the housekeeping it needs (directory refresh, lake commits)."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.workspace = Workspace.open(settings.home, settings.db)
        self.store = self.workspace.store
        self.ledger = Ledger.for_workspace(self.workspace)
        self.lake = LakeWriter(self.workspace.settings.lake_dir, source="web")
        listeners = decision_listeners()
        self.sink = AuditSink(self.ledger, self.lake, listeners=listeners)
        keys = settings.keys or KeyfileProvider.from_dir(self.workspace.settings.keys_dir)
        self.guard = Guard(self.store, Vault(keys), self.sink)
        self.group = GroupCommit(
            self.store, self.guard, self.ledger, self.lake, listeners, settings.group_limit
        )
        # An interaction's contract and purpose never change once it is opened (closing
        # sets closed_at only), so they may be remembered; whether it is still open, and
        # whose it is, the guard reads afresh for every decision.
        self.purposes: dict[int, tuple[str, str]] = {}
        self._reader: Connection | None = None
        self._reader_busy = False
        self._refreshed = time.monotonic()
        self._committed = time.monotonic()

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for the short reads before a decision (credentials, purposes).

        Kept open between requests: checking a connection out of the pool and
        resetting it on return cost as much as the read itself. Each use ends with
        a rollback, so no transaction (and no stale snapshot) outlives it; a
        database error drops it, and the next use opens a fresh one.
        """
        if self._reader_busy:  # not expected (handlers do not nest); never shared
            with self.store.engine.connect() as conn:
                yield conn
            return
        if self._reader is None:
            self._reader = self.store.engine.connect()
        conn = self._reader
        self._reader_busy = True
        try:
            yield conn
        except SQLAlchemyError:
            self._reader = None
            conn.invalidate()
            raise
        finally:
            self._reader_busy = False
            if self._reader is conn:
                conn.rollback()

    def now(self) -> dt.datetime:
        """The moment a request is decided at."""
        return self.settings.clock()

    def tick(self) -> None:
        """Reload the directory and publish lake rows when they are due."""
        now = time.monotonic()
        if now - self._refreshed >= self.settings.refresh_seconds:
            self.refresh()
        if now - self._committed >= self.settings.lake_commit_seconds:
            self.commit_lake()

    def refresh(self) -> None:
        """Reload staff, devices, sites and contracts (HR and asset changes)."""
        self.guard.refresh()
        self._refreshed = time.monotonic()

    def commit_lake(self) -> None:
        """Publish the decisions' lake rows written so far."""
        self.lake.commit()
        self._committed = time.monotonic()

    def site_of(self, staff_id: str | None) -> str | None:
        """The staff member's site, if the directory knows them."""
        if staff_id is None:
            return None
        try:
            return self.guard.directory.staff(staff_id).site_id
        except UnknownParty:
            return None

    def refuse(
        self,
        conn: Connection,
        *,
        staff_id: str,
        verb: Verb,
        customer_id: int,
        source_ip: str,
        device_id: str | None,
        reason: str,
    ) -> int | None:
        """Record a denial the web layer made before the guard could be asked.

        It goes through the same sink as the guard's own decisions, so the ledger
        and the lake hold every refused request; returns its ledger index.
        """
        record = DecisionRecord(
            at=self.now(),
            staff_id=staff_id,
            verb=verb,
            customer_id=customer_id,
            fields=(),
            source_ip=source_ip,
            device_id=device_id,
            interaction_id=None,
            allowed=False,
            reasons=(reason,),
            site_id=self.site_of(staff_id),
        )
        return self.sink.emit(conn, record)

    def close(self) -> None:
        """Publish what is buffered and release the database."""
        try:
            self.lake.commit()
        finally:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
            self.workspace.close()
