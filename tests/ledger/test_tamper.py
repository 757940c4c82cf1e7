"""Any single change to a stored ledger is detected by verify (hypothesis)."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpoguard.ledger import Ledger, Signer, VerifyReport
from bpoguard.ledger._merkle import nodes_before
from bpoguard.store import Store

from .conftest import ORIGIN

SIZE = 40


@dataclass
class State:
    """Every ledger table, as plain data, to change and write back."""

    head: int
    entries: list[bytes]
    nodes: dict[int, bytes]
    checkpoints: list[tuple[int, bytes, int, str]] = field(default_factory=list)


def load(path: Path) -> State:
    with closing(sqlite3.connect(path)) as db:
        return State(
            head=db.execute("SELECT size FROM ledger_head").fetchone()[0],
            entries=[r[0] for r in db.execute("SELECT entry FROM ledger_entries ORDER BY idx")],
            nodes=dict(db.execute("SELECT pos, hash FROM ledger_nodes")),
            checkpoints=list(db.execute("SELECT size, root, time, note FROM ledger_checkpoints")),
        )


def save(path: Path, state: State) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        for table in ("ledger_entries", "ledger_nodes", "ledger_checkpoints"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
        db.execute("UPDATE ledger_head SET size = ?", (state.head,))
        db.executemany("INSERT INTO ledger_entries VALUES (?, ?)", enumerate(state.entries))
        db.executemany("INSERT INTO ledger_nodes VALUES (?, ?)", state.nodes.items())
        db.executemany("INSERT INTO ledger_checkpoints VALUES (?, ?, ?, ?)", state.checkpoints)


def flip(data: bytes, at: int, bit: int) -> bytes:
    at %= len(data)
    return data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]


# Each mutation: (description, function State -> None). An attacker who rewrites
# rows also keeps the head consistent with them; that must not help.
index = st.integers(0, SIZE - 1)
bit = st.integers(0, 7)


def edit_byte(k: int, at: int, b: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        s.entries[k] = flip(s.entries[k], at, b)

    return apply


def delete(k: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        del s.entries[k]
        s.head -= 1

    return apply


def insert(k: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        s.entries.insert(k, b'{"decision":"allow","forged":true}')
        s.head += 1

    return apply


def duplicate(k: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        s.entries.insert(k, s.entries[k])
        s.head += 1

    return apply


def reorder(a: int, b: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        s.entries[a], s.entries[b] = s.entries[b], s.entries[a]

    return apply


def truncate(t: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        keep = SIZE - t
        s.entries = s.entries[:keep]
        s.nodes = {p: h for p, h in s.nodes.items() if p < nodes_before(keep)}
        s.head = keep

    return apply


def edit_node(pos: int, at: int, b: int) -> Callable[[State], None]:
    def apply(s: State) -> None:
        s.nodes[pos] = flip(s.nodes[pos], at, b)

    return apply


def replace_checkpoint(which: int, forger: str) -> Callable[[State], None]:
    def apply(s: State) -> None:
        size, root, time, _ = s.checkpoints[which]
        if forger == "other key":
            key = Ed25519PrivateKey.generate()
            fake_root = root
        else:  # the log's own key, over a root that is not the log's (a rewritten history)
            key = PRIVATE_KEY[0]
            fake_root = flip(root, 0, 0)
        cp = Signer(key, ORIGIN).sign(size, fake_root, dt.datetime.fromtimestamp(time, dt.UTC))
        s.checkpoints[which] = (size, fake_root, time, cp.note)

    return apply


PRIVATE_KEY: list[Ed25519PrivateKey] = []

mutations = st.one_of(
    st.builds(edit_byte, index, st.integers(0, 200), bit),
    st.builds(delete, index),
    st.builds(insert, st.integers(0, SIZE)),
    st.builds(duplicate, index),
    st.builds(reorder, index, index),
    st.builds(truncate, st.integers(1, SIZE)),
    st.builds(edit_node, st.integers(0, nodes_before(SIZE) - 1), st.integers(0, 31), bit),
    st.builds(replace_checkpoint, st.integers(0, 3), st.sampled_from(["other key", "log key"])),
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Signer]:
    """A ledger of 40 entries, checkpointed at 10, 20, 30 and 40, closed on disk."""
    key = Ed25519PrivateKey.generate()
    PRIVATE_KEY[:] = [key]
    signer = Signer(key, ORIGIN)
    path = tmp_path_factory.mktemp("tamper") / "pristine.db"
    store = Store(f"sqlite:///{path}")
    store.migrate()
    ledger = Ledger(store, signer, checkpoint_every=10)
    for i in range(SIZE):
        ledger.append({"decision": "deny" if i % 3 else "allow", "record": f"C{i:03d}", "n": i})
    assert ledger.verify().ok
    store.dispose()
    return path, signer


def verify_copy(pristine: Path, signer: Signer, work: Path, change: Callable[[State], None],
                known: tuple[str, ...] = ()) -> VerifyReport:  # fmt: skip
    copy = work / "copy.db"
    shutil.copyfile(pristine, copy)
    state = load(copy)
    change(state)
    save(copy, state)
    store = Store(f"sqlite:///{copy}")
    try:
        return Ledger(store, signer).verify(known=known)
    finally:
        store.dispose()
        for leftover in work.glob("copy.db*"):
            leftover.unlink()


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(change=mutations)
def test_any_single_change_is_detected(
    pristine: tuple[Path, Signer], tmp_path: Path, change: Callable[[State], None]
) -> None:
    path, signer = pristine
    state = load(path)
    before = (state.head, list(state.entries), dict(state.nodes), list(state.checkpoints))
    change(state)
    if (state.head, state.entries, state.nodes, state.checkpoints) == before:
        return  # e.g. reordering an entry with itself: no change to detect
    report = verify_copy(path, signer, tmp_path, change)
    assert not report.ok
    assert report.problem


def test_untouched_copy_verifies(pristine: tuple[Path, Signer], tmp_path: Path) -> None:
    path, signer = pristine
    report = verify_copy(path, signer, tmp_path, lambda s: None)
    assert report.ok, report.problem
    assert (report.entries_checked, report.checkpoints_checked) == (SIZE, 4)


def test_edited_entry_is_reported_by_index(pristine: tuple[Path, Signer], tmp_path: Path) -> None:
    path, signer = pristine
    report = verify_copy(path, signer, tmp_path, edit_byte(41 % SIZE, 5, 0))
    assert report.problem == "entry 1: leaf hash differs from stored"
    assert report.entry == 1


def test_truncation_is_reported_against_the_checkpoint_beyond(
    pristine: tuple[Path, Signer], tmp_path: Path
) -> None:
    path, signer = pristine
    report = verify_copy(path, signer, tmp_path, truncate(5))
    assert report.problem == (
        "checkpoint at size 40 is beyond the log's 35 entries: entries were removed"
    )


def test_rewrite_with_checkpoints_removed_is_caught_by_a_held_checkpoint(
    pristine: tuple[Path, Signer], tmp_path: Path
) -> None:
    """An admin with the key rewrites history and its checkpoints; an auditor's copy catches it."""
    path, signer = pristine
    held = load(path).checkpoints[-1][3]  # the auditor kept the checkpoint at size 40

    def rewrite(s: State) -> None:
        truncate(8)(s)
        s.checkpoints = [c for c in s.checkpoints if c[0] <= 32]

    assert verify_copy(path, signer, tmp_path, rewrite).ok  # without outside help: undetectable
    report = verify_copy(path, signer, tmp_path, rewrite, known=(held,))
    assert not report.ok
    assert "beyond the log's 32 entries" in str(report.problem)


def test_forked_checkpoint_is_reported(pristine: tuple[Path, Signer], tmp_path: Path) -> None:
    path, signer = pristine
    size, root, time, _ = load(path).checkpoints[1]
    forged = signer.sign(size, flip(root, 3, 3), dt.datetime.fromtimestamp(time, dt.UTC))
    report = verify_copy(path, signer, tmp_path, lambda s: None, known=(forged.note,))
    assert "different roots" in str(report.problem)
