"""The one-field vault read the matcher makes for a partial answers as reading every field does."""

from __future__ import annotations

import pytest
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.fields import FieldType
from bpoguard.guard.vault import Vault
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def test_reading_one_field_gives_what_reading_all_gives_for_it(world: World) -> None:
    customers = world.customers("org-albion")
    every = tuple(FieldType)
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(provider(ws))
        for customer_id in list(customers)[:25]:
            whole = vault.get(conn, customer_id, every)
            assert whole  # the customer has values, so the comparison means something
            for field_ in every:
                one = vault.get(conn, customer_id, (field_,))
                assert one == ({field_: whole[field_]} if field_ in whole else {})
            card = customers[customer_id]["card_number"]
            assert vault.get(conn, customer_id, [FieldType.CARD_NUMBER]) == {
                FieldType.CARD_NUMBER: card
            }


def test_reading_one_field_of_a_customer_with_no_values_is_empty(world: World) -> None:
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(provider(ws))
        assert vault.get(conn, 10**9, (FieldType.CARD_NUMBER,)) == {}
        assert vault.get(conn, 10**9, ()) == {}
