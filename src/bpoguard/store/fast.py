"""Hot statements straight to the database driver, compiled once per dialect.

SQLAlchemy's execution layer costs several times what a small statement
costs the driver (measured on the guard's per-view read: about 75-120 µs
through ``Connection.execute`` against about 45 µs on sqlite3's cursor).
:class:`Prepared` compiles a Core statement once per dialect, remembers the
order of its parameters, their bind processors (SQLite stores datetimes as
text, for example) and its result processors, and then runs it on the
connection's own DBAPI cursor inside the caller's transaction. Driver errors
are re-raised as SQLAlchemy's DBAPIError subclasses, parameters hidden, as
the rest of the store raises them.

Only for the few statements on a request's hot path; everything else goes
through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine

__all__ = ["Prepared", "run"]

_Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    """One statement's SQL text for one dialect, and how to bind and read it."""

    sql: str
    names: tuple[str, ...]  # the bound names in order (positional drivers)
    literals: Mapping[str, Any]  # values fixed in the statement itself
    binders: Mapping[str, _Processor]  # each distinct name once
    readers: tuple[_Processor, ...]
    positional: bool
    processes_rows: bool

    def params(self, given: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        """The driver's parameters: positional in the statement's order, or named.

        Each distinct name is bound once, however often the statement repeats it.
        """
        bound: dict[str, Any] = {}
        for name, binder in self.binders.items():
            value = given[name] if name in given else self.literals[name]
            bound[name] = binder(value) if binder is not None and value is not None else value
        if self.positional:
            return [bound[name] for name in self.names]
        return bound

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        """A result row with the columns' result processors applied (booleans, datetimes)."""
        if not self.processes_rows:
            return tuple(raw)
        return tuple(
            reader(value) if reader is not None else value
            for reader, value in zip(self.readers, raw, strict=True)
        )


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)  # a Core statement compiles to SQL
    binds = compiled.binds
    positional = bool(compiled.positional)
    names = tuple(compiled.positiontup or ()) if positional else tuple(binds)
    literals = {name: binds[name].value for name in names if not binds[name].required}
    # dialect_impl: the dialect's own type (SQLite's DATETIME writes text), as
    # SQLAlchemy itself would bind it.
    binders = {
        name: _binder(binds[name].type.dialect_impl(dialect), dialect)
        for name in dict.fromkeys(names)
    }
    readers: list[_Processor] = []
    # A query's columns, or an UPDATE's RETURNING columns; nothing for a plain write.
    for column in getattr(statement, "exported_columns", ()) or ():
        readers.append(column.type.dialect_impl(dialect).result_processor(dialect, None))
    return _Compiled(
        sql=compiled.string,
        names=names,
        literals=literals,
        binders=binders,
        readers=tuple(readers),
        positional=positional,
        processes_rows=any(r is not None for r in readers),
    )


_MEMO_SIZE = 1024


def _binder(impl: TypeEngine[Any], dialect: Dialect) -> _Processor:
    """The type's bind processor; for datetimes, remembering the last values bound.

    SQLite's DATETIME writes text (about 3 µs a value) and a request binds the
    same shift and hour starts several times. The memo is keyed on the value and
    its tzinfo: equal datetimes of one zone have the same wall time, which is
    what the text holds (equal instants of two zones do not share an entry).
    """
    processor = impl.bind_processor(dialect)
    if processor is None or not isinstance(impl, DateTime):
        return processor
    memo: dict[tuple[Any, Any], Any] = {}

    def bind(value: Any) -> Any:
        key = (value, getattr(value, "tzinfo", None))
        try:
            return memo[key]
        except KeyError:
            pass
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        bound = memo[key] = processor(value)
        return bound

    return bind


class Prepared:
    """A Core statement run on the raw driver cursor; compiled once per dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        """Wrap a statement built once at import time; it is compiled on first use."""
        self.statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, conn: Connection) -> _Compiled:
        name = conn.dialect.name
        found = self._by_dialect.get(name)
        if found is None:
            found = self._by_dialect[name] = _compile(self.statement, conn.dialect)
        return found

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run the statement in conn's transaction; return the driver's row count."""
        compiled = self._compiled(conn)
        cursor = conn.connection.cursor()
        try:
            run(conn, cursor, compiled.sql, compiled.params(params))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def one(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a query in conn's transaction; its first row, processed, or None."""
        compiled = self._compiled(conn)
        cursor = conn.connection.cursor()
        try:
            raw = run(conn, cursor, compiled.sql, compiled.params(params)).fetchone()
        finally:
            cursor.close()
        return None if raw is None else compiled.row(raw)

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run a query (or a write with RETURNING) in conn's transaction; every row, processed."""
        compiled = self._compiled(conn)
        cursor = conn.connection.cursor()
        try:
            rows = run(conn, cursor, compiled.sql, compiled.params(params)).fetchall()
        finally:
            cursor.close()
        return [compiled.row(raw) for raw in rows]


def run(conn: Connection, cursor: Any, sql: str, params: Any, *, many: bool = False) -> Any:
    """Execute on the driver's cursor; driver errors become SQLAlchemy's, as elsewhere.

    The error hides the parameters: they may be ledger bytes or customer ids, and
    have no place in a message.
    """
    dbapi = conn.dialect.loaded_dbapi
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except dbapi.Error as exc:
        lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            params,
            exc,
            dbapi.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=conn.dialect,
            ismulti=many,
        ) from exc
    return cursor
