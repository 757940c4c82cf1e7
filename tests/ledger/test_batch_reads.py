"""The ledger's batch reads return exactly what the single reads return, however batched."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bpoguard.errors import LedgerError
from bpoguard.ledger import Ledger, _ledger
from bpoguard.ledger.verifier import leaf_hash, verify_inclusion


def _entries(n: int) -> list[dict[str, object]]:
    return [{"decision": "allow", "field": "iban", "record": f"C{i:05d}", "n": i} for i in range(n)]


@pytest.fixture
def ledger(db_url: str, open_ledger: Callable[..., Ledger]) -> Ledger:
    ledger = open_ledger(db_url)
    ledger.append_many(_entries(77))  # not a power of two: ragged right edges
    return ledger


@pytest.mark.parametrize("batch", [1, 3, 5_000])
def test_entries_bytes_are_the_single_reads(
    ledger: Ledger, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ledger, "BATCH", batch)
    wanted = [76, 0, 5, 5, 41, 63, 64]
    found = ledger.entries_bytes(wanted)
    assert sorted(found) == sorted(set(wanted))
    for index in wanted:
        assert found[index] == ledger.entry_bytes(index)
    assert ledger.entries_bytes([]) == {}


def test_entries_bytes_refuses_a_missing_entry_as_the_single_read_does(ledger: Ledger) -> None:
    with pytest.raises(LedgerError) as single:
        ledger.entry_bytes(77)
    with pytest.raises(LedgerError) as batch:
        ledger.entries_bytes([3, 80, 77])
    assert str(batch.value) == str(single.value)  # the smallest missing one is named


@pytest.mark.parametrize("batch", [1, 7, 5_000])
@pytest.mark.parametrize("tree_size", [1, 2, 50, 64, 77, None])
def test_inclusion_proofs_are_the_single_proofs(
    ledger: Ledger, tree_size: int | None, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ledger, "BATCH", batch)
    size = tree_size if tree_size is not None else 77
    wanted = sorted({0, size - 1, size // 2, min(63, size - 1), min(3, size - 1)})
    proofs = ledger.inclusion_proofs([*wanted, wanted[0]], tree_size)
    assert sorted(proofs) == wanted
    root = ledger.root(size)
    for index in wanted:
        single = ledger.inclusion_proof(index, tree_size)
        assert proofs[index] == single
        assert proofs[index].leaf_hash == leaf_hash(ledger.entry_bytes(index))
        verify_inclusion(index, size, proofs[index].leaf_hash, proofs[index].hashes, root)
    assert ledger.inclusion_proofs([], tree_size) == {}


def test_inclusion_proofs_refuse_what_the_single_proof_refuses(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="not in a tree of size 50"):
        ledger.inclusion_proofs([1, 50], 50)
    with pytest.raises(LedgerError, match="beyond"):
        ledger.inclusion_proofs([1], 78)
