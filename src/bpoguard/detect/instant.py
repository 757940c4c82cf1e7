"""Rules that need no history, raised as the guard decides.

:class:`InstantRules` is an audit-sink listener: it sees every decision with
its ledger index inside the decision's own transaction, so the alert commits
(or rolls back) with the decision and exists as soon as the decision does.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Connection

from bpoguard.access import Verb
from bpoguard.audit import DecisionRecord
from bpoguard.detect import alerts
from bpoguard.detect.detectors import AFTER_LEAVING, CANARY, NO_INTERACTION, OFF_PREMISES
from bpoguard.detect.findings import Detector, Severity
from bpoguard.guard.directory import Directory, UnknownParty

log = logging.getLogger("bpoguard.detect")


class InstantRules:
    """Canary touched, access after leaving, from outside the premises, reveal without a call."""

    def __init__(self, directory: Directory | None = None) -> None:
        # A directory given here is used as it is; otherwise the store's is read, and re-read daily.
        self._fixed = directory
        self._directory: Directory | None = directory
        self._loaded_for: dt.date | None = None

    def on_decision(self, conn: Connection, record: DecisionRecord, ledger_index: int) -> None:
        """Raise or extend the alerts this decision calls for, in its transaction."""
        for detector, explanation in self.check(conn, record, ledger_index):
            created = alerts.raise_instant(
                conn,
                detector,
                record.staff_id,
                record.at,
                explanation,
                (f"ledger-{ledger_index}", ledger_index),
            )
            if created and detector.severity is Severity.CRITICAL:
                log.critical("alert %s: %s", detector.id, explanation)

    def check(
        self, conn: Connection, record: DecisionRecord, ledger_index: int
    ) -> list[tuple[Detector, str]]:
        """The instant rules this decision breaks, each with its explanation."""
        when = f"{record.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC (ledger entry {ledger_index})"
        what = f"{record.verb.value} of customer {record.customer_id}"
        outcome = "allowed" if record.allowed else "denied"
        hits: list[tuple[Detector, str]] = []
        if record.canary:
            hits.append((CANARY, f"{record.staff_id}: {what}, a canary, at {when}, {outcome}"))
        if record.verb is Verb.REVEAL and record.interaction_id is None:
            fields = ", ".join(f.value for f in record.fields)
            hits.append(
                (
                    NO_INTERACTION,
                    f"{record.staff_id} revealed {fields} of customer "
                    f"{record.customer_id} with no open interaction at {when}, {outcome}",
                )
            )
        directory = self._directory_for(conn, record.at)
        try:
            staff = directory.staff(record.staff_id)
        except UnknownParty:
            staff = None
        if staff is not None and staff.left is not None and record.at.date() > staff.left:
            hits.append(
                (
                    AFTER_LEAVING,
                    f"{record.staff_id} (left {staff.left}): {what} at {when}, {outcome}",
                )
            )
        if directory.premises_of(record.source_ip) is None:
            hits.append(
                (
                    OFF_PREMISES,
                    f"{record.staff_id}: {what} from {record.source_ip}, outside "
                    f"every premises network, at {when}, {outcome}",
                )
            )
        return hits

    def _directory_for(self, conn: Connection, at: dt.datetime) -> Directory:
        # Reloaded when decisions reach a new day, as HR and the asset register change it
        # (only forwards: a batch mixes the two UTC days a night shift spans).
        if self._fixed is not None:
            return self._fixed
        day = at.astimezone(dt.UTC).date()
        if self._directory is None or self._loaded_for is None or day > self._loaded_for:
            self._directory = Directory.load(conn)
            self._loaded_for = day
        return self._directory
