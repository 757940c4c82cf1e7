"""A block's partial values are checked in one batched vault read, deciding as one by one does.

The search never reads a partial; the candidates' fields are read together once the
block has been searched (:meth:`Vault.get_many`), and each record is then decided as
:meth:`Matcher.match` decides it alone (one :meth:`Vault.get` a candidate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.fields import FieldType
from bpoguard.guard.vault import Vault
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells
from bpoguard.trace.matcher import AMBIGUOUS, MATCHED, PARTIAL_ONLY, Matcher, RecordMatch, clients
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


class _Reads(Vault):
    """A real vault that counts its reads of customers' values."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.singly = 0
        self.batches: list[int] = []

    def get(self, conn: Any, customer_id: int, fields: Sequence[FieldType]) -> dict[FieldType, str]:
        self.singly += 1
        return super().get(conn, customer_id, fields)

    def get_many(
        self, conn: Any, customer_ids: Iterable[int], fields: Sequence[FieldType]
    ) -> dict[int, dict[FieldType, str]]:
        ids = list(customer_ids)
        self.batches.append(len(ids))
        return super().get_many(conn, ids, fields)


def _records(world: World) -> list[Cells]:
    """Records whose partials agree, disagree, break ties between two customers, or stand alone."""
    customers = list(world.customers("org-albion").values())
    with_cards = [c for c in customers if c["card_number"]]
    cells: list[tuple[tuple[str | None, str], ...]] = []
    for one, two in zip(with_cards[:40:2], with_cards[1:40:2], strict=True):
        card, other = one["card_number"], two["card_number"]
        cells.append((("acc", one["account_number"]), ("last4", f"ending {card[-4:]}")))
        cells.append((("acc", one["account_number"]), ("last4", f"ending {other[-4:]}")))
        # A tie between two customers of one client (a card of one, a phone of the
        # other), broken by a partial that agrees with one of them alone...
        tie = (("card", card), ("phone", two["phone"]))
        cells.append((*tie, ("last4", f"ending {card[-4:]}")))
        # ...or left a tie by one that agrees with neither.
        cells.append((*tie, ("last4", "ending 0000" if card[-4:] != "0000" else "ending 1111")))
        cells.append((("last4", f"ending {card[-4:]}"),))  # a partial and nothing else
    return [Cells(n + 1, f"line {n + 2}", c) for n, c in enumerate(cells)]


def test_partials_are_read_in_one_batch_a_block_and_decide_as_one_by_one(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 30)
    monkeypatch.setattr(recognition, "BLOCK", 40)
    records = _records(world)
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        known = clients(conn)
        alone = _Reads(provider(ws))
        expected = [Matcher(conn, alone, known).match(r) for r in records]
        batched = _Reads(provider(ws))
        got = list(Matcher(conn, batched, known).match_all(records))
    assert got == expected
    statuses = [r.status for r in got]
    assert statuses.count(MATCHED) == 60 and statuses.count(AMBIGUOUS) == 20
    assert statuses.count(PARTIAL_ONLY) == 20
    assert _verdicts(got[0::5]) == {"agrees"} and _verdicts(got[1::5]) == {"disagrees"}
    # The tie broken by the partial: the card's customer, the partial agreeing.
    assert all(r.matched_fields == ("card_number",) for r in got[2::5])
    assert _verdicts(got[2::5]) == {"agrees"}
    assert all(len(r.candidates) == 2 for r in got[3::5])
    # One by one: a read a candidate. Batched: one read a block, none singly.
    assert alone.singly == 20 + 20 + 2 * 20 + 2 * 20 and not alone.batches
    assert batched.singly == 0 and len(batched.batches) == 3  # blocks of 30, 40 and 30
    assert sum(batched.batches) == alone.singly


def _verdicts(results: list[RecordMatch]) -> set[str]:
    return {verdict for r in results for _, verdict in r.partials}
