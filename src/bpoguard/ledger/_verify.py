"""Full verification: re-derive every stored hash and check every checkpoint.

One pass over the entries (in index order) and the nodes (in post-order,
which is the order an append-only log completes them), rebuilding the tree as
the writer did. The first disagreement is reported with the entry it concerns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import Connection, select

from bpoguard.errors import LedgerError
from bpoguard.ledger import _merkle, _tables
from bpoguard.ledger._checkpoint import open_checkpoint
from bpoguard.ledger.verifier import VerifierKey

Progress = Callable[[int, int], None]  # (entries checked, entries in all)
CHUNK = 20_000
PROGRESS_EVERY = 1 << 16


@dataclass(frozen=True)
class VerifyReport:
    """What verify found: ok, or the first problem and the entry it concerns."""

    ok: bool
    size: int  # entries the head row counts
    entries_checked: int
    checkpoints_checked: int
    problem: str | None = None
    entry: int | None = None  # the entry index the problem concerns, when there is one

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object."""
        return {
            "ok": self.ok,
            "size": self.size,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "problem": self.problem,
            "entry": self.entry,
        }


class _Problem(Exception):
    def __init__(self, message: str, entry: int | None = None) -> None:
        super().__init__(message)
        self.entry = entry


def verify_tables(
    conn: Connection,
    key: VerifierKey,
    progress: Progress | None,
    known: Sequence[str] = (),
) -> VerifyReport:
    """Verify the ledger tables seen through `conn` against the log's verifier key.

    `known` are checkpoint notes kept outside the database (by an auditor, a
    witness): the log must still reproduce each of them.
    """
    size = conn.execute(select(_tables.head.c.size).where(_tables.head.c.id == 1)).scalar_one()
    checked = [0]
    try:
        roots = _checkpoint_roots(conn, key)
        _add_known(roots, known, key)
        _scan(conn, size, roots, progress, checked)
    except _Problem as problem:
        return VerifyReport(False, size, checked[0], 0, str(problem), problem.entry)
    return VerifyReport(True, size, checked[0], len(roots))


def _checkpoint_roots(conn: Connection, key: VerifierKey) -> dict[int, bytes]:
    """Check each checkpoint's signature and that its row matches its note; size -> root."""
    cps = _tables.checkpoints
    roots: dict[int, bytes] = {}
    for size, root, time, note in conn.execute(select(cps).order_by(cps.c.size)):
        try:
            cp = open_checkpoint(str(note), key)
        except LedgerError as exc:
            raise _Problem(f"checkpoint at size {size}: {exc}") from None
        when = dt.datetime.fromtimestamp(int(time), dt.UTC)
        if (cp.size, cp.root, cp.time) != (size, bytes(root), when):
            raise _Problem(
                f"checkpoint at size {size}: stored size, root or time differ from its note"
            )
        if size == 0 and cp.root != _merkle.EMPTY_ROOT:
            raise _Problem("checkpoint at size 0: root is not the empty tree's hash")
        roots[int(size)] = cp.root
    return roots


def _add_known(roots: dict[int, bytes], known: Sequence[str], key: VerifierKey) -> None:
    for note in known:
        try:
            cp = open_checkpoint(note, key)
        except LedgerError as exc:
            raise _Problem(f"given {exc}") from None
        if roots.setdefault(cp.size, cp.root) != cp.root:
            raise _Problem(
                f"checkpoint at size {cp.size}: the given checkpoint and the stored one "
                "have different roots (the log was rewritten)"
            )
        if cp.size == 0 and cp.root != _merkle.EMPTY_ROOT:
            raise _Problem("given checkpoint at size 0: root is not the empty tree's hash")


@contextmanager
def _rows(conn: Connection, sql: str, name: str) -> Iterator[Iterator[Any]]:
    """Stream (key, bytes) rows through the driver's own cursor: the scan's hot path.

    On PostgreSQL a named (server-side) cursor, so a large log is not loaded at once.
    """
    raw: Any = conn.connection.dbapi_connection
    cursor = raw.cursor() if conn.dialect.name == "sqlite" else raw.cursor(name=name)
    try:
        cursor.execute(sql)
        yield chain.from_iterable(iter(lambda: cursor.fetchmany(CHUNK), []))
    finally:
        cursor.close()


def _scan(
    conn: Connection,
    size: int,
    roots: dict[int, bytes],
    progress: Progress | None,
    checked: list[int],
) -> None:
    with (
        _rows(conn, "SELECT pos, hash FROM ledger_nodes ORDER BY pos", "verify_nodes") as stored,
        _rows(conn, "SELECT idx, entry FROM ledger_entries ORDER BY idx", "verify_entries") as rows,
    ):
        _walk(stored, rows, size, roots, progress, checked)


def _walk(
    stored: Iterator[tuple[int, bytes]],
    rows: Iterator[tuple[int, bytes]],
    size: int,
    roots: dict[int, bytes],
    progress: Progress | None,
    checked: list[int],
) -> None:
    sha256 = hashlib.sha256
    stack: list[tuple[int, bytes]] = []  # the right edge: (level, hash)
    pos = 0
    index = 0
    for idx, blob in rows:
        if idx != index:
            raise _Problem(f"entry {index} is missing (the next stored entry is {idx})", index)
        if index >= size:
            raise _Problem(f"entry {index} is stored beyond the head's {size} entries", index)
        h = sha256(b"\x00" + blob).digest()  # leaf hash (RFC 9162 2.1.1)
        row = next(stored, None)
        if row is None or row[0] != pos or row[1] != h:
            raise _node_problem(row, pos, index, 0)
        pos += 1
        level = 0
        while stack and stack[-1][0] == level:
            h = sha256(b"\x01" + stack.pop()[1] + h).digest()
            level += 1
            row = next(stored, None)
            if row is None or row[0] != pos or row[1] != h:
                raise _node_problem(row, pos, index, level)
            pos += 1
        stack.append((level, h))
        index += 1
        if index in roots and _merkle.fold(x for _, x in stack) != roots[index]:
            raise _Problem(
                f"checkpoint at size {index}: root hash differs from the log's root", index - 1
            )
        if progress is not None and index % PROGRESS_EVERY == 0:
            checked[0] = index
            progress(index, size)
    checked[0] = index
    _finish(stored, index, size, roots)
    if progress is not None:
        progress(index, size)


def _node_problem(row: tuple[int, bytes] | None, pos: int, index: int, level: int) -> _Problem:
    if row is None or row[0] != pos:
        return _Problem(f"entry {index}: node {pos} is missing from the node table", index)
    if level == 0:
        return _Problem(f"entry {index}: leaf hash differs from stored", index)
    first = index + 1 - (1 << level)
    return _Problem(f"entry {index}: node over entries {first}..{index} differs from stored", index)


def _finish(
    stored: Iterator[tuple[int, bytes]], count: int, size: int, roots: dict[int, bytes]
) -> None:
    if count != size:
        raise _Problem(f"the head counts {size} entries but {count} are stored", min(count, size))
    extra = next(stored, None)
    if extra is not None:
        raise _Problem(f"node {extra[0]} is stored beyond the log's {count} entries")
    beyond = [s for s in roots if s > count]
    if beyond:
        raise _Problem(
            f"checkpoint at size {min(beyond)} is beyond the log's {count} entries: "
            "entries were removed",
            count,
        )
