"""The stages after matching read only what the report needs, and give the same answers."""

from __future__ import annotations

import base64
import gc
import json
from pathlib import Path

from trace_world import World

from bpoguard.guard import canary
from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.ledger import Ledger
from bpoguard.ledger.verifier import leaf_hash, verify_inclusion
from bpoguard.trace import leak
from bpoguard.trace.accesses import Access
from bpoguard.trace.report import leak_document
from bpoguard.workspace import Workspace


def test_canaries_asked_for_by_customer_are_those_of_the_full_list(world: World) -> None:
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        every = canary.list_canaries(conn)
        assert len(every) >= 2
        some = [every[0].customer_id, every[-1].customer_id, -5]  # -5: no such customer
        assert canary.list_canaries(conn, customer_ids=some) == [every[0], every[-1]]
        assert canary.list_canaries(conn, customer_ids=[]) == []
        albion = canary.list_canaries(conn, "org-albion")
        ids = [c.customer_id for c in every]
        assert canary.list_canaries(conn, "org-albion", customer_ids=ids) == albion


def _single_proofs(
    ws: Workspace, evidence: dict[str, dict[int, list[Access]]]
) -> dict[str, object]:
    """The proofs as the trace built them before batching: one entry and one proof at a time."""
    ledger = Ledger.for_workspace(ws)
    checkpoint = ledger.latest_checkpoint()
    tree_size = checkpoint.size if checkpoint is not None else ledger.size()
    proofs: dict[str, object] = {}
    for by_customer in evidence.values():
        for accesses in by_customer.values():
            for a in accesses:
                index = a.ledger_index
                if index is None or str(index) in proofs or index >= tree_size:
                    continue
                if len(proofs) >= leak.MAX_PROOFS:
                    continue
                proofs[str(index)] = {
                    "entry": ledger.entry_bytes(index).decode("utf-8"),
                    "proof": ledger.inclusion_proof(index, tree_size).to_json(),
                }
    return proofs


def test_the_batched_proofs_are_the_single_ones_in_the_same_order(
    world: World, tmp_path: Path
) -> None:
    # Many of the bank's customers: plenty of accesses, so the cap of proofs is reached.
    rows = [r for r in world.customers("org-albion").values() if r.get("card_number")][:400]
    path = tmp_path / "after-reads.csv"
    path.write_text("card\n" + "\n".join(r["card_number"] for r in rows) + "\n")
    with Workspace.open(world.home) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        trace = leak.trace_leak(ws, vault, path)
        proofs = trace.ledger["proofs"]
        assert len(proofs) == leak.MAX_PROOFS
        expected = _single_proofs(ws, trace.evidence)
        assert list(proofs) == list(expected)  # the same entries, in the same order
        assert proofs == expected
        checkpoint = Ledger.for_workspace(ws).latest_checkpoint()
    assert checkpoint is not None and trace.ledger["tree_size"] == checkpoint.size
    for index, proved in proofs.items():
        hashes = [base64.b64decode(h) for h in proved["proof"]["hashes"]]
        leaf = leaf_hash(proved["entry"].encode("utf-8"))
        verify_inclusion(int(index), checkpoint.size, leaf, hashes, checkpoint.root)
    assert json.loads(json.dumps(leak_document(trace), default=str))["ledger"]["proofs"]


def test_the_collector_is_back_on_after_a_trace_and_stays_off_if_it_was(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "after-gc.txt"
    path.write_text("nothing here\n")
    with Workspace.open(world.home) as ws:
        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
        assert gc.isenabled()
        leak.trace_leak(ws, vault, path)
        assert gc.isenabled()
        gc.disable()
        try:
            leak.trace_leak(ws, vault, path)
            assert not gc.isenabled()
        finally:
            gc.enable()
