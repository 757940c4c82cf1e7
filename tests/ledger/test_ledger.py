"""The ledger on a real database: appends, checkpoints, proofs, the public surface."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

import bpoguard.ledger
from bpoguard import workspace
from bpoguard.errors import LedgerError
from bpoguard.ledger import Ledger, Signer, canonical_json, open_checkpoint, read_verifier_key
from bpoguard.ledger.verifier import leaf_hash, verify_consistency, verify_inclusion
from bpoguard.store import Store

from .test_merkle import ref_mth


def entries(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {"decision": "deny", "field": "card_number", "record": f"C{i:05d}", "reason": "off_shift"}
        for i in range(start, start + n)
    ]


def test_public_surface_is_exported_on_purpose() -> None:
    assert sorted(bpoguard.ledger.__all__) == [
        "Checkpoint",
        "ConsistencyProof",
        "InclusionProof",
        "Ledger",
        "Signer",
        "VerifierKey",
        "VerifyReport",
        "canonical_json",
        "open_checkpoint",
        "read_verifier_key",
    ]
    for name in bpoguard.ledger.__all__:
        assert getattr(bpoguard.ledger, name).__doc__


def test_appends_get_consecutive_indexes_and_keep_canonical_bytes(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url)
    assert ledger.append({"b": 1, "a": "é"}) == 0
    assert ledger.append_many(entries(5)) == [1, 2, 3, 4, 5]
    assert ledger.append_many([]) == []
    assert ledger.size() == 6
    assert ledger.entry_bytes(0) == '{"a":"é","b":1}'.encode()
    assert ledger.entry(3) == entries(5)[2]


def test_root_is_the_rfc9162_tree_hash_of_the_entries(ledger: Ledger) -> None:
    ledger.append_many(entries(37))
    blobs = [canonical_json(e) for e in entries(37)]
    for size in (0, 1, 2, 5, 16, 37):
        assert ledger.root(size) == ref_mth(blobs[:size])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"score": 0.5}, "entry 0 of the batch: floating-point numbers are not allowed"),
        ({"n": 2**60}, "outside the exact range"),
        ({1: "x"}, "object key 1 is not a string"),
        ({"when": dt.date(2026, 1, 1)}, "a date cannot be written as JSON"),
    ],
)
def test_entries_that_json_cannot_carry_canonically_are_refused(
    ledger: Ledger, entry: dict[object, object], message: str
) -> None:
    with pytest.raises(LedgerError, match=message):
        ledger.append(entry)  # type: ignore[arg-type]
    assert ledger.size() == 0


def test_a_refused_entry_refuses_the_whole_batch(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="entry 2 of the batch"):
        ledger.append_many([*entries(2), {"x": 1.0}])
    assert ledger.size() == 0


def test_inclusion_proof_verifies_against_the_signed_checkpoint(
    db_url: str, open_ledger: Callable[..., Ledger], signer: Signer
) -> None:
    ledger = open_ledger(db_url)
    ledger.append_many(entries(100))
    cp = ledger.checkpoint()
    assert cp.size == 100
    for index in (0, 1, 63, 64, 99):
        proof = ledger.inclusion_proof(index, cp.size)
        assert proof.leaf_hash == leaf_hash(ledger.entry_bytes(index))
        verify_inclusion(index, cp.size, proof.leaf_hash, proof.hashes, cp.root)
    assert open_checkpoint(cp.note, signer.verifier).root == cp.root


def test_consistency_proof_links_two_checkpoints(
    db_url: str, open_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_ledger(db_url)
    ledger.append_many(entries(13))
    old = ledger.checkpoint()
    ledger.append_many(entries(50, 13))
    new = ledger.checkpoint()
    proof = ledger.consistency_proof(old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, proof.hashes)
    assert proof.to_json()["from_size"] == 13


def test_proofs_for_sizes_beyond_the_log_are_refused(ledger: Ledger) -> None:
    ledger.append_many(entries(4))
    with pytest.raises(LedgerError, match="entry 4 is not in a tree of size 4"):
        ledger.inclusion_proof(4)
    with pytest.raises(LedgerError, match="tree size 9 is beyond the ledger's 4 entries"):
        ledger.inclusion_proof(0, 9)
    with pytest.raises(LedgerError, match="no consistency proof from size 3 to 2"):
        ledger.consistency_proof(3, 2)
    with pytest.raises(LedgerError, match="entry 7 does not exist"):
        ledger.entry(7)


def test_checkpoint_is_a_c2sp_signed_note(ledger: Ledger, signer: Signer) -> None:
    ledger.append_many(entries(3))
    cp = ledger.checkpoint()
    body, signature = cp.note.split("\n\n")
    origin, size, root, time = body.split("\n")
    assert (origin, size, base64.b64decode(root)) == (signer.name, "3", cp.root)
    assert time == "time " + cp.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    dash, name, blob = signature.rstrip("\n").split(" ")
    assert (dash, name) == ("\u2014", signer.name)
    raw = base64.b64decode(blob)
    expected_id = hashlib.sha256(signer.name.encode() + b"\n\x01" + signer.public_key).digest()[:4]
    assert raw[:4] == expected_id
    assert len(raw) == 4 + 64
    key = read_verifier_key(signer.verifier_key)
    assert (
        signer.verifier_key
        == f"{signer.name}+{expected_id.hex()}+"
        + base64.b64encode(b"\x01" + signer.public_key).decode()
    )
    assert open_checkpoint(cp.note, key) == cp


def test_checkpoint_of_an_unchanged_log_is_the_same_checkpoint(ledger: Ledger) -> None:
    empty = ledger.checkpoint()
    assert empty.root == hashlib.sha256(b"").digest()
    ledger.append(entries(1)[0])
    first = ledger.checkpoint()
    assert ledger.checkpoint() == first
    assert ledger.latest_checkpoint() == first
    assert [c.size for c in ledger.checkpoints()] == [0, 1]
    assert ledger.checkpoint_at(0) == empty


def test_checkpoint_every_n_entries_is_cut_in_the_append(
    open_ledger: Callable[..., Ledger], sqlite_url: str
) -> None:
    ledger = open_ledger(sqlite_url, checkpoint_every=10)
    for _ in range(7):
        ledger.append_many(entries(4))
    assert [c.size for c in ledger.checkpoints()] == [12, 20]  # 28 has not crossed 30
    assert ledger.verify().ok


def test_a_ledger_without_a_signer_appends_but_cannot_cut_checkpoints(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.migrate()
    ledger = Ledger(store, checkpoint_every=1)
    ledger.append({"a": 1})
    with pytest.raises(LedgerError, match="no signing key"):
        ledger.checkpoint()
    with pytest.raises(LedgerError, match="verifier key"):
        ledger.verify()
    store.dispose()


def test_origin_that_cannot_be_a_key_name_is_refused(signer: Signer) -> None:
    with pytest.raises(LedgerError, match="cannot name a note key"):
        Signer(signer._key, "has space")


def test_workspace_ledger_signs_with_the_workspace_key(home: Path) -> None:
    workspace.init(home)
    with workspace.Workspace.open(home) as ws:
        ledger = Ledger.for_workspace(ws)
        assert ledger.append({"decision": "allow"}) == 0
        cp = ledger.checkpoint()
        assert cp.origin == ws.settings.ledger_origin
        assert ledger.verify().ok
    assert (home / "keys" / "ledger-signing.pem").stat().st_mode & 0o777 == 0o600


def test_sqlite_keys_are_rowids_so_entries_cost_no_second_index(ledger: Ledger) -> None:
    with ledger.store.engine.connect() as conn:
        for table in ("ledger_entries", "ledger_nodes"):
            assert inspect(conn).get_indexes(table) == []
            sql = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}
            ).scalar_one()
            assert "INTEGER NOT NULL" in sql
        autoindexes = conn.execute(
            text("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_ledger%'")
        ).all()
    assert autoindexes == []
