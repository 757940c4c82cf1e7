"""The record gateway a workspace has before the guard: it records, and allows.

Interactions go to the store, every request to the audit sink (the ledger and
the event lake) as an allowed decision whose reason says that no policy was
applied. The guard replaces it with a gateway that decides.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, update
from sqlalchemy.sql.compiler import SQLCompiler

from bpoguard.access import AccessRequest, Decision, InteractionStart, Verb
from bpoguard.audit import AuditSink, DecisionRecord
from bpoguard.guard.service import Guard
from bpoguard.store.fast import run
from bpoguard.store.models import Interaction

UNGUARDED = ("allowed: no guard installed, request recorded without a policy decision",)
_BUFFERED = Decision(allowed=True, reasons=UNGUARDED, ledger_index=None)


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
        record = DecisionRecord(
            request.at, request.staff_id, request.verb, request.customer_id, request.fields,
            request.source_ip, request.device_id, request.interaction_id, True, UNGUARDED,
        )  # fmt: skip
        index = self._sink.emit(self._conn, record)
        if index is None:
            return _BUFFERED  # the same answer every time until a batch is written
        return Decision(allowed=True, reasons=UNGUARDED, ledger_index=index)

    def flush(self) -> None:
        """Write batched interactions and audit entries."""
        if self._pending:
            rows = list(self._pending.values())
            if self._conn.dialect.name == "sqlite":
                _INSERT_INTERACTIONS.run(self._conn, rows)
            else:
                self._conn.execute(insert(Interaction), rows)
            self._pending.clear()
        self._sink.flush(self._conn)


class _BulkInsert:
    """An INSERT of many rows with one executemany on the driver's cursor (SQLite).

    The statement is compiled once, and each value goes through its column's
    own bind processor (datetimes to text, enums to their names), as
    SQLAlchemy's executemany would; what it skips is SQLAlchemy building a
    parameter dictionary a row, which cost as much as the inserts themselves.
    """

    def __init__(self, table: Any) -> None:
        self.statement = insert(table)
        self._compiled: dict[str, tuple[str, list[tuple[str, Any]]]] = {}

    def _compile(self, conn: Connection) -> tuple[str, list[tuple[str, Any]]]:
        name = conn.dialect.name
        found = self._compiled.get(name)
        if found is None:
            dialect = conn.dialect
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)  # a Core INSERT compiles to SQL
            order = list(compiled.positiontup or ())
            binders = [
                (key, compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect))
                for key in order
            ]
            found = self._compiled[name] = (compiled.string, binders)
        return found

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Insert the rows (each a dict with every column) in conn's transaction."""
        sql, binders = self._compile(conn)
        params = [
            tuple(
                row[key] if bind is None or row[key] is None else bind(row[key])
                for key, bind in binders
            )
            for row in rows
        ]
        cursor = conn.connection.cursor()
        try:
            run(conn, cursor, sql, params, many=True)
        finally:
            cursor.close()


_INSERT_INTERACTIONS = _BulkInsert(Interaction.__table__)


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
