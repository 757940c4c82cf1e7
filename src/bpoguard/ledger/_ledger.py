"""The ledger: append entries, cut checkpoints, serve proofs, verify everything.

Appends are serialised by the database itself, so threads and processes (and
several hosts on PostgreSQL) may write at once. An append's first statement,
``UPDATE ledger_head SET size = size + n ... RETURNING size``, takes the write
lock (on SQLite the file's one write lock; on PostgreSQL the single
``ledger_head`` row's lock), moves the head and returns the size under that
lock, so no two writers can claim the same indexes. It then reads the right
edge of the tree, and writes the entries, their leaf hashes and every perfect
node they complete. An index is returned only after the commit, so an
acknowledged entry is on disk (SQLite runs these transactions with
``synchronous=FULL`` unless ``power_safe=False``), and a crash at any point
leaves either the whole batch or none of it.

The append's statements go straight to the database driver (psycopg or
sqlite3), not through SQLAlchemy's execution layer, which cost several times
the statements themselves on a one-entry append; :func:`bpoguard.store.fast.run`
re-raises driver errors as SQLAlchemy's DBAPIError subclasses, as the rest of
the store raises them.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select

from bpoguard.errors import LedgerError
from bpoguard.ledger import _canonical, _merkle, _tables
from bpoguard.ledger._checkpoint import Checkpoint, Signer
from bpoguard.ledger._verify import Progress, VerifyReport, verify_tables
from bpoguard.ledger.verifier import (
    ProofError,
    VerifierKey,
    parse_json,
)
from bpoguard.store.fast import run as _run

if TYPE_CHECKING:
    from bpoguard.store import Store
    from bpoguard.workspace import Workspace

EMPTY_ROOT = _merkle.EMPTY_ROOT
BATCH = 5_000  # indexes or positions in one statement of a batch read
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class InclusionProof:
    """Proof that entry `index` is in the tree of `tree_size` entries (RFC 9162 2.1.3)."""

    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]

    def to_json(self) -> dict[str, Any]:
        """The proof as the standalone verifier reads it (hashes in base64)."""
        return {
            "type": "inclusion",
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": _b64(self.leaf_hash),
            "hashes": [_b64(h) for h in self.hashes],
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that the tree of `to_size` extends the tree of `from_size` (RFC 9162 2.1.4)."""

    from_size: int
    to_size: int
    hashes: list[bytes]

    def to_json(self) -> dict[str, Any]:
        """The proof as the standalone verifier reads it (hashes in base64)."""
        return {
            "type": "consistency",
            "from_size": self.from_size,
            "to_size": self.to_size,
            "hashes": [_b64(h) for h in self.hashes],
        }


class Ledger:
    """The tamper-evident, append-only log of a store.

    Entries must not hold sensitive values: field names, record ids, decisions
    and reasons only. The ledger cannot tell a value from a name; callers can.
    """

    def __init__(
        self,
        store: Store,
        signer: Signer | None = None,
        *,
        checkpoint_every: int | None = None,
        power_safe: bool = True,
        clock: Clock = _now,
    ) -> None:
        """`power_safe` (SQLite): fsync every append's commit (synchronous=FULL), so an
        acknowledged entry survives power loss; False survives a process crash only
        (synchronous=NORMAL) and commits several times faster."""
        if checkpoint_every is not None and checkpoint_every < 1:
            raise LedgerError("checkpoint_every must be a positive number of entries")
        self.power_safe = power_safe
        self.store = store
        self.signer = signer
        self.checkpoint_every = checkpoint_every
        self._clock = clock

    @classmethod
    def for_workspace(cls, ws: Workspace, *, checkpoint_every: int | None = None) -> Ledger:
        """The workspace's ledger, signing with keys/ledger-signing.pem under its origin."""
        from bpoguard.workspace import SIGNING_KEY_NAME  # import cycle otherwise

        key_path = ws.settings.keys_dir / SIGNING_KEY_NAME
        signer = Signer.from_pem_file(key_path, ws.settings.ledger_origin)
        return cls(ws.store, signer, checkpoint_every=checkpoint_every)

    # --- writing ---------------------------------------------------------------------------

    def append(self, entry: Mapping[str, Any]) -> int:
        """Append one entry; return its index once it is committed."""
        return self.append_many([entry])[0]

    def append_many(self, entries: Iterable[Mapping[str, Any]]) -> list[int]:
        """Append entries in one transaction (group commit); return their indexes after commit."""
        blobs = _encode_all(entries)
        if not blobs:
            return []
        with self._writing() as conn:
            return self._append(conn, blobs)

    def append_within(self, conn: Connection, entries: Iterable[Mapping[str, Any]]) -> list[int]:
        """Append inside the caller's open transaction on this ledger's database.

        The entries become durable, and their indexes acknowledged, when the caller
        commits; they vanish with its rollback. Other writers wait until then.
        """
        blobs = _encode_all(entries)
        if not blobs:
            return []
        return self._append(conn, blobs)

    def append_encoded_within(self, conn: Connection, blobs: Sequence[bytes]) -> list[int]:
        """:meth:`append_within` for entries the caller has already encoded.

        Each blob must be exactly ``canonical_json`` of its entry (what an auditor's
        verifier recomputes); for writers of one fixed entry shape that fill in
        its canonical text directly, tested against ``canonical_json``
        (:meth:`bpoguard.audit.DecisionRecord.entry_bytes`). Anything but bytes is
        refused.
        """
        checked = list(blobs)
        for n, blob in enumerate(checked):
            if type(blob) is not bytes:
                raise LedgerError(f"entry {n} of the batch is a {type(blob).__name__}, not bytes")
        if not checked:
            return []
        return self._append(conn, checked)

    def _append(self, conn: Connection, blobs: list[bytes]) -> list[int]:
        """Claim len(blobs) indexes under the write lock, then write the entries and nodes.

        Three statements on PostgreSQL, four on SQLite, whatever the batch size:
        claim (lock, size, head moved), right edge read, and the inserts.
        """
        sql = _statements(conn)
        n = len(blobs)
        cursor = conn.connection.cursor()
        try:
            new_size = int(_run(conn, cursor, sql.claim, (n,)).fetchone()[0])
            size = new_size - n
            try:
                leaves = _leaf_hashes(blobs)
                frontier = self._edge(conn, cursor, sql, size)
                new_nodes, stack = _merkle.extend(size, frontier, leaves)
                rows = list(zip(range(size, new_size), blobs, strict=True))
                sql.write(conn, cursor, rows, new_nodes)
            except BaseException:
                # The head moved first: put it back, so that a caller who catches the
                # error and commits anyway cannot leave a head beyond its entries.
                _undo_claim(conn, cursor, sql, size, new_size)
                raise
        finally:
            cursor.close()
        if self._checkpoint_due(size, new_size):
            self._insert_checkpoint(conn, new_size, _merkle.fold(h for _, h in stack))
        return list(range(size, new_size))

    def _edge(
        self, conn: Connection, cursor: Any, sql: _Statements, size: int
    ) -> list[tuple[int, bytes]]:
        """The right edge (level, hash) of the tree of `size`, read with one statement."""
        perfect = _merkle.perfect_nodes(0, size)
        if not perfect:
            return []
        positions = [_merkle.position(lv, i) for lv, i in perfect]
        query, params = sql.nodes(positions)
        found = {pos: bytes(h) for pos, h in _run(conn, cursor, query, params).fetchall()}
        try:
            return [(lv, found[p]) for (lv, _), p in zip(perfect, positions, strict=True)]
        except KeyError:
            raise LedgerError(
                f"the ledger's stored nodes do not cover its {size} entries; "
                "run bpoguard ledger verify"
            ) from None

    def checkpoint(self) -> Checkpoint:
        """Cut a signed checkpoint of the log as it is now (or return the one at this size)."""
        with self._locked() as (conn, size):
            existing = self._checkpoint_row(conn, size)
            if existing is not None:
                return existing
            root = _merkle.fold(h for _, h in self._frontier(conn, size)) if size else EMPTY_ROOT
            return self._insert_checkpoint(conn, size, root)

    # --- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        """Number of entries committed."""
        with self.store.engine.connect() as conn:
            return self._head(conn)

    def entry_bytes(self, index: int) -> bytes:
        """The canonical JSON bytes of entry `index`, exactly as hashed."""
        with self.store.engine.connect() as conn:
            blob = conn.execute(
                select(_tables.entries.c.entry).where(_tables.entries.c.idx == index)
            ).scalar_one_or_none()
        if blob is None:
            raise LedgerError(f"entry {index} does not exist; the ledger holds {self.size()}")
        return bytes(blob)

    def entries_bytes(self, indexes: Iterable[int]) -> dict[int, bytes]:
        """:meth:`entry_bytes` of many entries at once: index -> bytes, a read per BATCH of them.

        LedgerError, as :meth:`entry_bytes` raises it, for the smallest index that does
        not exist.
        """
        wanted = sorted({int(i) for i in indexes})
        found: dict[int, bytes] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(wanted), BATCH):
                # Plain SQL of ints we formatted: no bound parameter per index (see _reader).
                listed = ",".join(str(i) for i in wanted[start : start + BATCH])
                sql = f"SELECT idx, entry FROM ledger_entries WHERE idx IN ({listed})"  # noqa: S608
                found.update((int(i), bytes(blob)) for i, blob in conn.exec_driver_sql(sql))
        for index in wanted:
            if index not in found:
                raise LedgerError(f"entry {index} does not exist; the ledger holds {self.size()}")
        return found

    def entry(self, index: int) -> dict[str, Any]:
        """Entry `index` as a JSON object."""
        value: dict[str, Any] = parse_json(self.entry_bytes(index))
        return value

    def latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, or None before the first is cut."""
        cps = _tables.checkpoints
        with self.store.engine.connect() as conn:
            row = conn.execute(select(cps).order_by(cps.c.size.desc()).limit(1)).first()
        return _checkpoint_from_row(row) if row is not None else None

    def checkpoint_at(self, size: int) -> Checkpoint:
        """The checkpoint cut at tree size `size`; LedgerError if there is none."""
        with self.store.engine.connect() as conn:
            found = self._checkpoint_row(conn, size)
        if found is None:
            raise LedgerError(f"no checkpoint at tree size {size}; see bpoguard ledger status")
        return found

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first."""
        cps = _tables.checkpoints
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(cps).order_by(cps.c.size)).all()
        return [_checkpoint_from_row(row) for row in rows]

    def root(self, size: int | None = None) -> bytes:
        """The Merkle tree hash of the first `size` entries (default: all)."""
        with self.store.engine.connect() as conn:
            size = self._check_size(conn, size)
            if size == 0:
                return EMPTY_ROOT
            return _merkle.resolve([(0, size)], self._reader(conn))[0]

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        """Proof that entry `index` is in the tree of `tree_size` entries (default: all)."""
        with self.store.engine.connect() as conn:
            tree_size = self._check_size(conn, tree_size)
            if not 0 <= index < tree_size:
                raise LedgerError(f"entry {index} is not in a tree of size {tree_size}")
            ranges = [(index, index + 1), *_merkle.inclusion_ranges(index, tree_size)]
            leaf, *path = _merkle.resolve(ranges, self._reader(conn))
        return InclusionProof(index, tree_size, leaf, path)

    def inclusion_proofs(
        self, indexes: Iterable[int], tree_size: int | None = None
    ) -> dict[int, InclusionProof]:
        """:meth:`inclusion_proof` of many entries in one tree: index -> proof.

        The stored nodes of all the proofs are read together, each once (proofs in one
        tree share their upper nodes), a read per BATCH of them; each proof is exactly
        the one :meth:`inclusion_proof` returns.
        """
        wanted = sorted({int(i) for i in indexes})
        with self.store.engine.connect() as conn:
            tree_size = self._check_size(conn, tree_size)
            for index in wanted:
                if not 0 <= index < tree_size:
                    raise LedgerError(f"entry {index} is not in a tree of size {tree_size}")
            ranges = {i: [(i, i + 1), *_merkle.inclusion_ranges(i, tree_size)] for i in wanted}
            every = [r for rs in ranges.values() for r in rs]
            hashes = iter(_merkle.resolve(every, self._batched_reader(conn)))
        proofs: dict[int, InclusionProof] = {}
        for index, rs in ranges.items():
            leaf, *path = [next(hashes) for _ in rs]
            proofs[index] = InclusionProof(index, tree_size, leaf, path)
        return proofs

    def inclusion_evidence(self, index: int, checkpoint: Checkpoint) -> dict[str, bytes]:
        """The files a verifier needs for one entry: entry, proof, checkpoint, key."""
        proof = self.inclusion_proof(index, checkpoint.size)
        key = self.signer.verifier_key if self.signer else ""
        return {
            "entry.json": self.entry_bytes(index),
            "proof.json": (json.dumps(proof.to_json(), indent=2, sort_keys=True) + "\n").encode(),
            "checkpoint.txt": checkpoint.note.encode(),
            "key.txt": (key + "\n").encode(),
        }

    def consistency_proof(self, from_size: int, to_size: int | None = None) -> ConsistencyProof:
        """Proof that the tree of `to_size` entries (default: all) extends that of `from_size`."""
        with self.store.engine.connect() as conn:
            to_size = self._check_size(conn, to_size)
            if not 0 <= from_size <= to_size:
                raise LedgerError(f"no consistency proof from size {from_size} to {to_size}")
            ranges = _merkle.consistency_ranges(from_size, to_size)
            hashes = _merkle.resolve(ranges, self._reader(conn))
        return ConsistencyProof(from_size, to_size, hashes)

    def verify(
        self,
        key: VerifierKey | None = None,
        progress: Progress | None = None,
        known: Sequence[str] = (),
    ) -> VerifyReport:
        """Re-derive every stored hash and check every checkpoint; report the first problem.

        `known` are checkpoint notes held outside the database; the log must match them.
        """
        key = key or (self.signer.verifier if self.signer else None)
        if key is None:
            raise LedgerError("verify needs the ledger's verifier key (see bpoguard ledger key)")
        with self.store.engine.connect() as conn:
            if self.store.is_sqlite:
                conn.exec_driver_sql("BEGIN")  # one read snapshot for the whole scan
            else:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            return verify_tables(conn, key, progress, known)

    # --- internals -------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[tuple[Connection, int]]:
        """A write transaction holding the ledger's lock, and the tree size under it."""
        with self._writing() as conn:
            if self.store.is_sqlite:
                yield conn, self._head(conn)  # BEGIN IMMEDIATE already holds the lock
            else:
                size = conn.execute(
                    select(_tables.head.c.size).where(_tables.head.c.id == 1).with_for_update()
                ).scalar_one()
                yield conn, int(size)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction of the ledger's own, committed when the block ends."""
        with self.store.engine.connect() as conn:
            if not self.store.is_sqlite:
                with conn.begin():
                    yield conn
                return
            # SQLite: the file's write lock, taken up front so that a reader inside the
            # block never sees a size another writer is about to move; FULL sync so a
            # commit survives power loss.
            if self.power_safe:
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                if self.power_safe:
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")  # the store's default
                    conn.commit()

    def _head(self, conn: Connection) -> int:
        size: int = conn.exec_driver_sql("SELECT size FROM ledger_head WHERE id = 1").scalar_one()
        return size

    def _check_size(self, conn: Connection, size: int | None) -> int:
        current = self._head(conn)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LedgerError(f"tree size {size} is beyond the ledger's {current} entries")
        return size

    def _reader(self, conn: Connection) -> _merkle.NodeReader:

        def read(positions: list[int]) -> dict[int, bytes]:
            # Plain SQL: positions are ints we computed; SQLAlchemy's IN expansion cost
            # more than the query itself on the one-entry append path.
            listed = ",".join(str(int(p)) for p in positions)
            sql = f"SELECT pos, hash FROM ledger_nodes WHERE pos IN ({listed})"  # noqa: S608
            return {pos: bytes(h) for pos, h in conn.exec_driver_sql(sql)}

        return read

    def _batched_reader(self, conn: Connection) -> _merkle.NodeReader:
        """:meth:`_reader` for many positions: a statement per BATCH of them."""
        read = self._reader(conn)

        def batched(positions: list[int]) -> dict[int, bytes]:
            found: dict[int, bytes] = {}
            for start in range(0, len(positions), BATCH):
                found.update(read(positions[start : start + BATCH]))
            return found

        return batched

    def _frontier(self, conn: Connection, size: int) -> list[tuple[int, bytes]]:
        """The perfect subtrees (level, hash) on the right edge of the tree of this size."""
        perfect = _merkle.perfect_nodes(0, size)
        if not perfect:
            return []
        found = self._reader(conn)([_merkle.position(lv, i) for lv, i in perfect])
        try:
            return [(lv, found[_merkle.position(lv, i)]) for lv, i in perfect]
        except KeyError:
            raise LedgerError(
                f"the ledger's stored nodes do not cover its {size} entries; "
                "run bpoguard ledger verify"
            ) from None

    def _checkpoint_due(self, old_size: int, new_size: int) -> bool:
        every = self.checkpoint_every
        if every is None or self.signer is None:
            return False
        return new_size // every > old_size // every

    def _insert_checkpoint(self, conn: Connection, size: int, root: bytes) -> Checkpoint:
        if self.signer is None:
            raise LedgerError("this ledger has no signing key; it cannot cut checkpoints")
        cp = self.signer.sign(size, root, self._clock())
        conn.execute(
            insert(_tables.checkpoints).values(
                size=size, root=root, time=int(cp.time.timestamp()), note=cp.note
            )
        )
        return cp

    def _checkpoint_row(self, conn: Connection, size: int) -> Checkpoint | None:
        cps = _tables.checkpoints
        row = conn.execute(select(cps).where(cps.c.size == size)).first()
        return _checkpoint_from_row(row) if row is not None else None


def _checkpoint_from_row(row: Sequence[Any]) -> Checkpoint:
    size, root, time, note = row
    return Checkpoint(
        origin=str(note).split("\n", 1)[0],
        size=int(size),
        root=bytes(root),
        time=dt.datetime.fromtimestamp(int(time), dt.UTC),
        note=str(note),
    )


def _leaf_hashes(blobs: list[bytes]) -> list[bytes]:
    """``leaf_hash`` of each blob (RFC 9162: SHA-256(0x00 || entry)), without a call each."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + blob).digest() for blob in blobs]


def _encode_all(entries: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Every entry's canonical bytes; LedgerError naming the first that has none."""
    blobs = []
    for n, entry in enumerate(entries):
        if type(entry) is not dict:
            if not isinstance(entry, Mapping):
                raise LedgerError(
                    f"entry {n} of the batch is a {type(entry).__name__}, not a mapping"
                )
            entry = dict(entry)
        try:
            blobs.append(_canonical.encode(entry))
        except ProofError as exc:
            raise LedgerError(f"entry {n} of the batch: {exc}") from None
        except UnicodeError:
            # The verifier's key sort meets a lone surrogate in a key before its own
            # check does; the character itself stays out of the message.
            raise LedgerError(
                f"entry {n} of the batch holds a lone surrogate, which is not valid UTF-8"
            ) from None
    return blobs


# --- the append's statements, straight to the driver ------------------------------------

Rows = list[tuple[int, bytes]]
# Beyond this many rows a batch is written with executemany (one prepared statement
# run per row by the driver) instead of one multi-row statement, which would pass
# the drivers' limits on parameters a statement.
_ONE_STATEMENT_ROWS = 200


@dataclass(frozen=True)
class _Statements:
    """The append's SQL for one driver's parameter style, built once per dialect."""

    mark: str  # the driver's parameter marker: "?" (sqlite3) or "%s" (psycopg)
    postgres: bool
    claim: str  # lock, read and move the head in one statement
    undo: str  # move it back, only if it is still where this append put it
    insert_entry: str
    insert_node: str

    @classmethod
    def of(cls, mark: str, postgres: bool) -> _Statements:
        """Every statement text for this parameter marker (markers only, no values)."""
        return cls(
            mark,
            postgres,
            claim="UPDATE ledger_head SET size = size + ? WHERE id = 1 RETURNING size",
            undo="UPDATE ledger_head SET size = ? WHERE id = 1 AND size = ?",
            insert_entry="INSERT INTO ledger_entries (idx, entry) VALUES (?, ?)",
            insert_node="INSERT INTO ledger_nodes (pos, hash) VALUES (?, ?)",
        ).marked(mark)

    def marked(self, mark: str) -> _Statements:
        """The same statements with the driver's marker in place of "?"."""
        return dataclasses.replace(
            self,
            claim=self.claim.replace("?", mark),
            undo=self.undo.replace("?", mark),
            insert_entry=self.insert_entry.replace("?", mark),
            insert_node=self.insert_node.replace("?", mark),
        )

    def nodes(self, positions: list[int]) -> tuple[str, Sequence[Any]]:
        """The statement reading these node positions, and its parameters."""
        if self.postgres:
            # One statement text whatever the count, so psycopg prepares it once.
            return "SELECT pos, hash FROM ledger_nodes WHERE pos = ANY(%s)", (positions,)
        return _nodes_in(len(positions)), positions

    def write(self, conn: Connection, cursor: Any, entries: Rows, nodes: Rows) -> None:
        """Insert the entry rows and node rows: one statement a table, one in all on PostgreSQL.

        Multi-row VALUES rather than executemany, which runs its statement once a row.
        """
        if len(entries) + len(nodes) > _ONE_STATEMENT_ROWS:
            _run(conn, cursor, self.insert_entry, entries, many=True)
            _run(conn, cursor, self.insert_node, nodes, many=True)
            return
        into_e = _insert_rows(self.mark, "ledger_entries (idx, entry)", len(entries))
        into_n = _insert_rows(self.mark, "ledger_nodes (pos, hash)", len(nodes))
        flat_e = [v for row in entries for v in row]
        flat_n = [v for row in nodes for v in row]
        if self.postgres:
            # One round trip: a data-modifying WITH inserts the entries too.
            _run(conn, cursor, f"WITH e AS ({into_e}) {into_n}", flat_e + flat_n)
        else:
            _run(conn, cursor, into_e, flat_e)
            _run(conn, cursor, into_n, flat_n)


@functools.lru_cache(maxsize=64)
def _nodes_in(count: int) -> str:
    """SQLite's read of `count` node positions (built once a count: an append reads 1-40)."""
    marks = ",".join("?" * count)
    return f"SELECT pos, hash FROM ledger_nodes WHERE pos IN ({marks})"  # noqa: S608


@functools.lru_cache(maxsize=512)
def _insert_rows(mark: str, into: str, count: int) -> str:
    """A multi-row INSERT of `count` two-column rows (built once a shape)."""
    values = ",".join([f"({mark},{mark})"] * count)
    return f"INSERT INTO {into} VALUES {values}"  # noqa: S608


_BY_DIALECT: dict[str, _Statements] = {}


def _statements(conn: Connection) -> _Statements:
    name = conn.dialect.name
    found = _BY_DIALECT.get(name)
    if found is None:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        found = _BY_DIALECT[name] = _Statements.of(mark, name == "postgresql")
    return found


def _undo_claim(conn: Connection, cursor: Any, sql: _Statements, size: int, claimed: int) -> None:
    """Put the head back to `size` after a failed append, if this transaction still can."""
    raw = conn.connection.dbapi_connection
    if sql.mark == "?" and not getattr(raw, "in_transaction", False):
        # SQLite rolled the whole transaction back itself (disk full, I/O error): the
        # claim is gone, and a statement now would run in a new transaction.
        return
    # An aborted PostgreSQL transaction refuses the statement: it can only roll back.
    with contextlib.suppress(conn.dialect.loaded_dbapi.Error):
        cursor.execute(sql.undo, (size, claimed))
