"""The record gateway a workspace has before the guard: it records, and allows.

Interactions go to the store, every request to the audit sink (the ledger and
the event lake) as an allowed decision whose reason says that no policy was
applied. The guard replaces it with a gateway that decides.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, update

from bpoguard.access import AccessRequest, Decision, InteractionStart, Verb
from bpoguard.audit import AuditSink, DecisionRecord
from bpoguard.guard.service import Guard
from bpoguard.store.models import Interaction

UNGUARDED = ("allowed: no guard installed, request recorded without a policy decision",)


class UnguardedGateway:
    """Records interactions in the store and requests through the audit sink; allows all.

    Writes go through the given connection, whose transaction the caller owns;
    interactions and audit entries are batched until flush().
    """

    def __init__(self, conn: Connection, sink: AuditSink, batch: int = 20_000) -> None:
        self._conn = conn
        self._sink = sink
        self._batch = batch
        self._pending: dict[int, dict[str, object]] = {}

    def open_interaction(self, start: InteractionStart) -> None:
        self._pending[start.id] = {
            "id": start.id,
            "contract_id": start.contract_id,
            "staff_id": start.staff_id,
            "customer_id": start.customer_id,
            "purpose": start.purpose,
            "channel": start.channel,
            "opened_at": start.at,
            "closed_at": None,
        }
        if len(self._pending) >= self._batch:
            self.flush()

    def close_interaction(self, interaction_id: int, at: dt.datetime) -> None:
        row = self._pending.get(interaction_id)
        if row is None:
            self._conn.execute(
                update(Interaction).where(Interaction.id == interaction_id).values(closed_at=at)
            )
        else:
            row["closed_at"] = at

    def request(self, request: AccessRequest) -> Decision:
        record = DecisionRecord.of(request, allowed=True, reasons=UNGUARDED)
        index = self._sink.emit(self._conn, record)
        return Decision(allowed=True, reasons=UNGUARDED, ledger_index=index)

    def flush(self) -> None:
        """Write batched interactions and audit entries."""
        if self._pending:
            self._conn.execute(insert(Interaction), list(self._pending.values()))
            self._pending.clear()
        self._sink.flush(self._conn)


class ServingGateway:
    """The guard as the agent's desktop uses it: views and reveals are served from the vault.

    The values are decrypted and masked exactly as for a real desktop, then
    dropped: the simulator needs only the decision.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def open_interaction(self, start: InteractionStart) -> None:
        self.guard.open_interaction(start)

    def close_interaction(self, interaction_id: int, at: dt.datetime) -> None:
        self.guard.close_interaction(interaction_id, at)

    def request(self, request: AccessRequest) -> Decision:
        if request.verb is Verb.VIEW:
            return self.guard.view(request).decision
        if request.verb is Verb.REVEAL and len(request.fields) == 1:
            return self.guard.reveal(request).decision
        return self.guard.request(request)  # verify needs a caller's answer; bulk reveals none

    def flush(self) -> None:
        self.guard.flush()
