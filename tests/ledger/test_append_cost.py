"""The cheap append path: same bytes, same guarantees, fewer statements.

The append claims its indexes with one UPDATE ... RETURNING, reads the tree's
right edge, and writes rows straight through the driver; these tests hold it
to what the slower path promised.
"""

from __future__ import annotations

import enum
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError

from bpoguard.errors import LedgerError
from bpoguard.ledger import Ledger, _canonical, canonical_json
from bpoguard.ledger.verifier import MAX_SAFE_INTEGER, ProofError


class Verb(enum.StrEnum):
    VIEW = "view"


class Small(enum.IntEnum):
    ONE = 1


def _entry(i: int) -> dict[str, object]:
    return {"staff": f"A{i % 7}", "verb": "view", "customer": 100_000 + i, "fields": ["name"]}


# Every kind of value an entry may hold, and several it may not (floats, big
# integers, non-string keys, enum members, lone surrogates, non-ASCII keys).
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text()
    | st.floats(allow_nan=False)
    | st.sampled_from([Verb.VIEW, Small.ONE])
)
_keys = st.text(max_size=6) | st.sampled_from(["a", "é", "\U0001f600", "\ufb01", "\ud800"])
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.dictionaries(st.integers(0, 3), inner, min_size=1, max_size=2)
    ),
    max_leaves=12,
)


def _outcome(encode: Callable[[Any], bytes], value: Any) -> bytes | str:
    try:
        return encode(value)
    except (ProofError, UnicodeError) as exc:  # the verifier's own refusals, as they are
        return f"refused: {type(exc).__name__}: {exc}"


@given(_values)
def test_the_fast_encoder_gives_the_verifiers_bytes_or_its_refusal(value: Any) -> None:
    assert _outcome(_canonical.encode, value) == _outcome(canonical_json, value)


def test_the_fast_encoder_refuses_what_the_verifier_refuses() -> None:
    for bad in ({"x": 1.5}, {"x": 2**53}, {1: "a"}, {"x": "\ud800"}, {"x": object()}):
        with pytest.raises(ProofError):
            _canonical.encode(bad)


def test_an_entry_with_a_lone_surrogate_key_is_refused_in_one_line(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match=r"entry 1 of the batch .*lone surrogate"):
        ledger.append_many([{"ok": 1}, {"\ud800": 1}])
    assert ledger.size() == 0


def test_a_single_entry_append_is_four_statements_on_sqlite(ledger: Ledger) -> None:
    ledger.append_many([_entry(i) for i in range(5)])
    seen: list[str] = []
    with ledger.store.engine.begin() as conn:
        raw = conn.connection.dbapi_connection
        assert isinstance(raw, sqlite3.Connection)
        raw.set_trace_callback(seen.append)
        try:
            assert ledger.append_within(conn, [_entry(5)]) == [5]
        finally:
            raw.set_trace_callback(None)
    # BEGIN (sqlite3's own, before the first write), claim, right edge, two inserts.
    statements = [s for s in seen if s.split()[0] != "BEGIN"]
    assert [s.split()[0] for s in statements] == ["UPDATE", "SELECT", "INSERT", "INSERT"]
    assert ledger.verify().ok


def test_a_rolled_back_append_leaves_nothing_and_the_next_append_takes_its_place(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url)
    ledger.append_many([_entry(i) for i in range(3)])
    with pytest.raises(RuntimeError), ledger.store.engine.begin() as conn:
        assert ledger.append_within(conn, [_entry(100), _entry(101)]) == [3, 4]
        raise RuntimeError("the caller gives up")
    assert ledger.size() == 3
    assert ledger.append(_entry(3)) == 3
    assert ledger.entry(3) == _entry(3)
    report = ledger.verify()
    assert report.ok, report.problem


def test_threads_appending_within_their_own_transactions_share_no_index(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url, checkpoint_every=25)
    got: dict[int, dict[str, object]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write(w: int) -> None:
        try:
            for k in range(30):
                entry = {"writer": w, "seq": k}
                with ledger.store.engine.begin() as conn:
                    # Half the transactions append twice, as a caller with two decisions.
                    indexes = ledger.append_within(conn, [entry])
                    if k % 2:
                        indexes += ledger.append_within(conn, [{**entry, "again": True}])
                with lock:
                    got.update({indexes[0]: entry})
                    if k % 2:
                        got[indexes[1]] = {**entry, "again": True}
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == list(range(4 * 45))
    assert ledger.size() == 180
    for index, entry in got.items():
        assert ledger.entry(index) == entry
    report = ledger.verify()
    assert report.ok, report.problem
    assert [cp.size for cp in ledger.checkpoints()] == [25, 50, 75, 100, 125, 150, 175]


def _commit_anyway(ledger: Ledger, entry: dict[str, object]) -> BaseException:
    """Append inside a transaction, swallow the error, and commit what is left."""
    with ledger.store.engine.begin() as conn:
        try:
            ledger.append_within(conn, [entry])
        except (LedgerError, DBAPIError) as exc:
            caught: BaseException = exc
        else:
            raise AssertionError("the append should have failed")
        _still_usable(conn)
    return caught


def _still_usable(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("SELECT 1")


def test_a_failed_append_puts_the_head_back_even_if_the_caller_commits(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url)
    ledger.append_many([_entry(i) for i in range(6)])
    # Tampering: a node of the right edge is gone, so no append can extend the tree.
    with ledger.store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_nodes WHERE pos = 9")
    exc = _commit_anyway(ledger, _entry(6))
    assert "do not cover its 6 entries" in str(exc)
    assert ledger.size() == 6
    with ledger.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM ledger_entries").scalar_one() == 6


def test_driver_errors_reach_callers_as_sqlalchemy_errors_without_the_entry(
    ledger: Ledger,
) -> None:
    ledger.append_many([_entry(i) for i in range(4)])
    # A stray row where the next entry belongs: the insert fails on the primary key.
    with ledger.store.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO ledger_entries VALUES (4, x'00')")
    exc = _commit_anyway(ledger, {"marker": "do-not-print-me"})
    assert isinstance(exc, IntegrityError)
    assert "do-not-print-me" not in str(exc)
    assert ledger.size() == 4  # the claim was undone before the caller committed
