"""The ledger's tables (SQLAlchemy Core). Only bpoguard.ledger reads or writes them.

ledger_head         one row (id 1): the number of entries; appends lock it
ledger_entries      entry index -> canonical JSON bytes of the entry
ledger_nodes        post-order node number -> SHA-256 of that perfect subtree
                    (leaf hashes included); see _merkle for the numbering
ledger_checkpoints  tree size -> root hash, time, and the signed note text
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, Table, Text

from bpoguard.store import Base

# BIGINT on PostgreSQL; INTEGER on SQLite so that the key is the rowid itself
# (no second index, and appends go to the end of the B-tree).
Index64 = BigInteger().with_variant(Integer, "sqlite")

head = Table(
    "ledger_head",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

entries = Table(
    "ledger_entries",
    Base.metadata,
    Column("idx", Index64, primary_key=True, autoincrement=False),
    Column("entry", LargeBinary, nullable=False),
)

nodes = Table(
    "ledger_nodes",
    Base.metadata,
    Column("pos", Index64, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints",
    Base.metadata,
    Column("size", Index64, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("time", BigInteger, nullable=False),  # Unix seconds, as in the note's time line
    Column("note", Text, nullable=False),
)
