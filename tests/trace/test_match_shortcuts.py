"""The matcher's shortcuts give what the plain ways give: digests, client order, look-up SQL."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.fields import FieldType as F
from bpoguard.guard.vault import INDEXED, BlindDigester, Vault, blind_digest
from bpoguard.trace.matcher import Client, Matcher
from bpoguard.workspace import Workspace

_FIELDS = st.sampled_from(sorted(INDEXED, key=lambda f: f.value))


@given(
    key=st.binary(min_size=0, max_size=200),  # shorter and longer than SHA-256's 64-byte block
    field=_FIELDS,
    values=st.lists(st.text(max_size=80), max_size=6),
)
def test_the_digester_gives_blind_digest_bytes_for_any_key_and_value(
    key: bytes, field: F, values: list[str]
) -> None:
    digest = BlindDigester(key, field)
    for value in values:
        try:
            expected = blind_digest(key, field, value)
        except UnicodeEncodeError:
            continue  # a lone surrogate: neither digests it (lookup_many skips it)
        assert digest(value) == expected


def test_the_digester_is_keyed_and_bound_to_its_field() -> None:
    one, two = b"k" * 32, b"j" * 32
    assert BlindDigester(one, F.PHONE)("+447700900123") != BlindDigester(two, F.PHONE)(
        "+447700900123"
    )
    assert BlindDigester(one, F.PHONE)("1234") != BlindDigester(one, F.ACCOUNT_NUMBER)("1234")
    # A digester is reusable: the same value twice, the same digest.
    digest = BlindDigester(one, F.EMAIL)
    assert digest("a@b.co") == digest("a@b.co") == blind_digest(one, F.EMAIL, "a@b.co")


_CLIENTS = tuple(Client(f"org-{n}", "GB") for n in range(5))


@given(hits=st.lists(st.integers(min_value=0, max_value=len(_CLIENTS) - 1), max_size=60))
def test_clients_stay_in_the_order_a_stable_sort_by_hits_gives(hits: list[int]) -> None:
    # The matcher keeps each column's client order up to date as hits come; it must be
    # what sorting the clients by their hits (ties in the clients' order) would give.
    matcher = Matcher.__new__(Matcher)
    matcher._position = {c.id: n for n, c in enumerate(_CLIENTS)}
    order = list(_CLIENTS)
    seen: Counter[str] = Counter()
    for n in hits:
        client = _CLIENTS[n]
        seen[client.id] += 1
        matcher._promote(order, seen, client)
        assert order == sorted(_CLIENTS, key=lambda c: -seen[c.id])


def test_batched_look_ups_of_every_list_length_find_the_values_at_both_ends(world: World) -> None:
    # The look-up statement has a few fixed sizes, a shorter list padded: lengths on
    # and around each size find the real values wherever they sit in the list.
    customers = list(world.customers("org-albion").items())
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(provider(ws))
        for n in (1, 2, 8, 9, 64, 65, 500, 501, 1_001):
            first, last = customers[n % 7], customers[n % 11 + 20]
            others = [f"+4477009{k:05d}" for k in range(max(0, n - 2))]
            values = [first[1]["phone"], *others, last[1]["phone"]][:n]
            found = vault.lookup_many(conn, "org-albion", F.PHONE, values, "GB")
            assert len(found) == len(set(values))
            assert first[0] in found[first[1]["phone"]]
            if n > 1:
                assert last[0] in found[last[1]["phone"]]
            one_by_one = {v: vault.lookup(conn, "org-albion", F.PHONE, v, "GB") for v in values}
            assert found == one_by_one
