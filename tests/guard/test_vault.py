"""The vault on SQLite and PostgreSQL: values sealed field by field, bound to their record,
found by blind index, readable before, during and after a KEK rotation."""

from __future__ import annotations

import base64
import secrets
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select, text, update

from bpoguard.errors import InputError
from bpoguard.fields import FieldType as F
from bpoguard.guard._tables import vault_index, vault_keys, vault_values
from bpoguard.guard.keys import KeyfileProvider, VaultKeyError, create_next_kek
from bpoguard.guard.vault import (
    INDEXED,
    Vault,
    VaultError,
    key_status,
    rewrap_all,
    rotate_kek,
)
from bpoguard.store import Store
from bpoguard.store import models as m

PHONE = "+447700900123"
CARD = "4929000000006"  # Visa test number, passes Luhn


@pytest.fixture
def store(blank_store: Store) -> Store:
    store = blank_store
    with store.engine.begin() as conn:
        conn.execute(
            insert(m.Organisation),
            [
                {"id": "org-a", "name": "A Bank", "kind": m.OrgKind.CLIENT, "country": "GB", "networks": []},
                {"id": "org-b", "name": "B Telco", "kind": m.OrgKind.CLIENT, "country": "IN", "networks": []},
            ],
        )  # fmt: skip
        conn.execute(
            insert(m.Customer),
            [
                {"id": 1, "client_id": "org-a", "ref": "A-1", "country": "GB", "is_canary": False},
                {"id": 2, "client_id": "org-a", "ref": "A-2", "country": "GB", "is_canary": False},
                {"id": 3, "client_id": "org-b", "ref": "B-3", "country": "IN", "is_canary": False},
            ],
        )
    return store


def _fill(engine: Engine, vault: Vault) -> None:
    with engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.PHONE: PHONE, F.NAME: "amber owen", F.CARD_NUMBER: CARD})
        vault.put(conn, "org-a", 2, {F.PHONE: "+447700900999", F.NAME: "phillip stokes"})
        vault.put(conn, "org-b", 3, {F.PHONE: "+919876543210", F.PAN: "AFZPK7190K"})


def _get(store: Store, vault: Vault, customer_id: int, *fields: F) -> dict[F, str]:
    with store.engine.connect() as conn:
        return vault.get(conn, customer_id, fields)


def _swap_blob(store: Store, src: tuple[int, F], dst: tuple[int, F]) -> None:
    with store.engine.begin() as conn:
        blob = conn.scalar(
            select(vault_values.c.blob).where(
                vault_values.c.customer_id == src[0], vault_values.c.field == src[1].value
            )
        )
        conn.execute(
            update(vault_values)
            .where(vault_values.c.customer_id == dst[0], vault_values.c.field == dst[1].value)
            .values(blob=blob)
        )


# --- round trip ------------------------------------------------------------------------------


def test_put_then_get_returns_each_value(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)

    assert _get(store, vault, 1, F.PHONE, F.NAME, F.CARD_NUMBER) == {
        F.PHONE: PHONE,
        F.NAME: "amber owen",
        F.CARD_NUMBER: CARD,
    }


def test_get_decrypts_only_the_fields_asked_for_and_skips_absent_ones(
    store: Store, vault: Vault
) -> None:
    _fill(store.engine, vault)

    assert _get(store, vault, 2, F.NAME, F.EMAIL) == {F.NAME: "phillip stokes"}
    assert _get(store, vault, 99, F.NAME) == {}
    assert _get(store, vault, 1) == {}


def test_database_never_holds_a_value_in_the_clear(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)

    with store.engine.connect() as conn:
        dumped = b"".join(
            repr(row).encode()
            for table in (vault_values, vault_index, vault_keys)
            for row in conn.execute(select(table))
        )
        blobs = b"".join(conn.scalars(select(vault_values.c.blob)))
    for secret in (PHONE, "amber owen", CARD, "AFZPK7190K"):
        assert secret.encode() not in dumped
        assert secret.encode() not in blobs


def test_put_replaces_a_field_and_its_index_entry(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.PHONE: "+447700900555"})

    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-a", F.PHONE, PHONE) == []
        assert vault.lookup(conn, "org-a", F.PHONE, "07700 900555") == [1]
    assert _get(store, vault, 1, F.NAME) == {F.NAME: "amber owen"}  # other fields kept


def test_delete_removes_value_and_index_entry(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    with store.engine.begin() as conn:
        vault.delete(conn, 1, [F.PHONE])

    assert _get(store, vault, 1, F.PHONE) == {}
    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-a", F.PHONE, PHONE) == []


def test_put_for_another_clients_customer_is_refused(store: Store, vault: Vault) -> None:
    with store.engine.begin() as conn, pytest.raises(VaultError, match="not customers of client"):
        vault.put(conn, "org-a", 3, {F.PHONE: PHONE})


def test_keys_for_an_unknown_client_are_refused(store: Store, vault: Vault) -> None:
    with store.engine.begin() as conn, pytest.raises(VaultError, match="unknown client"):
        vault.ensure_keys(conn, "org-nobody")


def test_each_client_has_its_own_data_and_index_keys(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    with store.engine.connect() as conn:
        a = vault.ensure_keys(conn, "org-a")
        b = vault.ensure_keys(conn, "org-b")

    assert len({a.data, a.index, b.data, b.index}) == 4
    assert "data=" not in repr(a) and a.data.hex() not in repr(a)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=0, max_size=300))
def test_any_text_round_trips(store: Store, vault: Vault, value: str) -> None:
    # PostgreSQL text cannot hold NUL; the vault stores bytes, so every string round-trips.
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.NOTES: value})
        assert vault.get(conn, 1, [F.NOTES]) == {F.NOTES: value}


# --- binding and tampering -------------------------------------------------------------------


def test_a_blob_swapped_between_customers_does_not_decrypt(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    _swap_blob(store, (2, F.PHONE), (1, F.PHONE))

    with pytest.raises(VaultError, match="customer 1 phone does not decrypt") as info:
        _get(store, vault, 1, F.PHONE)
    assert "+447700900999" not in str(info.value)


def test_a_blob_swapped_between_fields_does_not_decrypt(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    _swap_blob(store, (1, F.NAME), (1, F.PHONE))

    with pytest.raises(VaultError, match="copied from another record or field"):
        _get(store, vault, 1, F.PHONE)


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_a_damaged_blob_is_an_error_never_garbage(store: Store, vault: Vault, damage: str) -> None:
    _fill(store.engine, vault)
    with store.engine.begin() as conn:
        where = (vault_values.c.customer_id == 1, vault_values.c.field == "card_number")
        blob = conn.scalar(select(vault_values.c.blob).where(*where))
        assert blob is not None
        broken = {
            "truncate": blob[:-1],
            "flip": blob[:20] + bytes([blob[20] ^ 1]) + blob[21:],
            "empty": b"",
        }[damage]
        conn.execute(update(vault_values).where(*where).values(blob=broken))

    with pytest.raises(VaultError, match="does not decrypt"):
        _get(store, vault, 1, F.CARD_NUMBER)


def test_a_different_kek_cannot_read_the_vault(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    stranger = Vault(
        KeyfileProvider.from_base64(base64.b64encode(secrets.token_bytes(32)).decode())
    )

    with pytest.raises(VaultKeyError, match="not available"):
        _get(store, stranger, 1, F.PHONE)


def test_a_wrapped_key_copied_to_another_client_does_not_unwrap(
    store: Store, keys_dir: Path
) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    with store.engine.begin() as conn:
        wrapped = conn.scalar(
            select(vault_keys.c.wrapped).where(
                vault_keys.c.client_id == "org-b", vault_keys.c.purpose == "data"
            )
        )
        conn.execute(
            update(vault_keys)
            .where(vault_keys.c.client_id == "org-a", vault_keys.c.purpose == "data")
            .values(wrapped=wrapped)
        )

    fresh = Vault(KeyfileProvider.from_dir(keys_dir))
    with pytest.raises(VaultKeyError, match="copied from another client"):
        _get(store, fresh, 1, F.PHONE)


# --- blind index -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, typed",
    [
        (F.PHONE, "+44 7700 900123"),
        (F.PHONE, "07700900123"),
        (F.PHONE, "(07700) 900-123"),
        (F.PHONE, "0044 7700 900123"),
        (F.CARD_NUMBER, "4929 0000 0000 6"),
        (F.CARD_NUMBER, "4929-0000-0000-6"),
    ],
)
def test_lookup_finds_differently_formatted_input(
    store: Store, vault: Vault, field: F, typed: str
) -> None:
    _fill(store.engine, vault)

    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-a", field, typed) == [1]


def test_lookup_matches_email_regardless_of_case(store: Store, vault: Vault) -> None:
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 2, {F.EMAIL: "phillip.stokes@example.com"})
        assert vault.lookup(conn, "org-a", F.EMAIL, " Phillip.Stokes@Example.COM ") == [2]


def test_lookup_finds_every_customer_sharing_a_value(store: Store, vault: Vault) -> None:
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.ACCOUNT_NUMBER: "12345678"})
        vault.put(conn, "org-a", 2, {F.ACCOUNT_NUMBER: "12345678"})
        assert vault.lookup(conn, "org-a", F.ACCOUNT_NUMBER, "1234 5678") == [1, 2]


def test_lookup_stays_within_the_client(store: Store, vault: Vault) -> None:
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.EMAIL: "same@example.com"})
        vault.put(conn, "org-b", 3, {F.EMAIL: "same@example.com"})
        assert vault.lookup(conn, "org-a", F.EMAIL, "same@example.com") == [1]
        assert vault.lookup(conn, "org-b", F.EMAIL, "same@example.com") == [3]
        digests = conn.scalars(select(vault_index.c.digest).where(vault_index.c.field == "email"))
        assert len(set(digests)) == 2  # per-client index keys: equal values, unlinkable digests


def test_lookup_reads_national_numbers_in_the_clients_country(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)

    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-b", F.PHONE, "09876 543210") == [3]
        assert vault.lookup(conn, "org-b", F.PHONE, "07700900123") == []


def test_lookup_of_an_unindexed_field_says_which_are(store: Store, vault: Vault) -> None:
    with store.engine.connect() as conn, pytest.raises(InputError, match="indexed: account_number"):
        vault.lookup(conn, "org-a", F.NAME, "amber owen")


def test_lookup_for_a_client_with_nothing_stored_finds_nothing(store: Store, vault: Vault) -> None:
    with store.engine.connect() as conn:
        assert vault.lookup(conn, "org-a", F.PHONE, PHONE) == []


def test_indexed_fields_cover_the_exact_match_identifiers() -> None:
    assert {F.PHONE, F.EMAIL, F.ACCOUNT_NUMBER, F.CARD_NUMBER} <= INDEXED
    assert F.NAME not in INDEXED and F.DATE_OF_BIRTH not in INDEXED


# --- key cache -------------------------------------------------------------------------------


class _CountingProvider:
    def __init__(self, inner: KeyfileProvider) -> None:
        self.inner = inner
        self.unwraps = 0

    @property
    def key_id(self) -> str:
        return self.inner.key_id

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self.inner.wrap(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        self.unwraps += 1
        return self.inner.unwrap(blob, context)


def test_client_keys_are_unwrapped_once_per_vault(store: Store, keys_dir: Path) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    counting = _CountingProvider(KeyfileProvider.from_dir(keys_dir))
    vault = Vault(counting)

    for _ in range(5):
        _get(store, vault, 1, F.PHONE)
        _get(store, vault, 2, F.NAME)
    assert counting.unwraps == 1


def test_a_rolled_back_key_is_never_used_afterwards(store: Store, vault: Vault) -> None:
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            vault.put(conn, "org-a", 1, {F.PHONE: PHONE})
            tx.rollback()
        with conn.begin():
            vault.put(conn, "org-a", 1, {F.PHONE: PHONE})

    assert _get(store, vault, 1, F.PHONE) == {F.PHONE: PHONE}


# --- KMS plug-in point -----------------------------------------------------------------------


class FakeKms:
    """A KMS stand-in: its own key, its own blob format, context bound as a KMS would."""

    key_id = "fake-kms/key-1"

    def __init__(self) -> None:
        self._kek = KeyfileProvider.from_base64(base64.b64encode(secrets.token_bytes(32)).decode())

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return b"KMS:" + self._kek.wrap(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if not blob.startswith(b"KMS:"):
            raise VaultKeyError("not wrapped by the fake KMS")
        return self._kek.unwrap(blob[4:], context)


def test_a_kms_provider_plugs_in(store: Store) -> None:
    vault = Vault(FakeKms())
    _fill(store.engine, vault)

    assert _get(store, vault, 3, F.PAN) == {F.PAN: "AFZPK7190K"}
    with store.engine.connect() as conn:
        assert key_status(conn, vault.keys).wrapped_by == {"fake-kms/key-1": 4}


class _KeyfileThenKms:
    """Reads keyfile-wrapped keys and KMS-wrapped ones; wraps with the KMS (a migration)."""

    def __init__(self, old: KeyfileProvider, new: FakeKms) -> None:
        self.old, self.new = old, new

    @property
    def key_id(self) -> str:
        return self.new.key_id

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self.new.wrap(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if blob.startswith(b"KMS:"):
            return self.new.unwrap(blob, context)
        return self.old.unwrap(blob, context)


def test_keys_move_from_the_keyfile_to_a_kms_without_touching_values(
    store: Store, keys_dir: Path
) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    kms = FakeKms()

    rotation = rewrap_all(store.engine, _KeyfileThenKms(KeyfileProvider.from_dir(keys_dir), kms))

    assert rotation.rewrapped == 4 and rotation.status.pending == 0
    assert _get(store, Vault(kms), 1, F.CARD_NUMBER) == {F.CARD_NUMBER: CARD}


# --- rotation --------------------------------------------------------------------------------


def _every_value(store: Store, vault: Vault) -> dict[tuple[int, F], str]:
    with store.engine.connect() as conn:
        pairs = conn.execute(select(vault_values.c.customer_id, vault_values.c.field)).all()
        return {(cid, F(name)): vault.get(conn, cid, [F(name)])[F(name)] for cid, name in pairs}


def test_rotation_writes_a_new_kek_and_rewraps_every_client_key(
    store: Store, keys_dir: Path
) -> None:
    vault = Vault(KeyfileProvider.from_dir(keys_dir))
    _fill(store.engine, vault)
    before = _every_value(store, vault)

    rotation = rotate_kek(store.engine, keys_dir)

    assert rotation.created is not None and rotation.created.path == keys_dir / "kek-2.key"
    assert (rotation.created.path.stat().st_mode & 0o777) == 0o600
    assert rotation.rewrapped == 4
    assert rotation.status.wrapped_by == {rotation.created.key_id: 4}
    assert [f.path.name for f in rotation.status.retirable] == ["kek.key"]
    assert (keys_dir / "kek.key").exists()  # never deleted automatically
    assert _every_value(store, Vault(KeyfileProvider.from_dir(keys_dir))) == before
    assert _every_value(store, vault) == before  # the running vault keeps reading


def test_after_retiring_the_old_kek_the_vault_still_reads(store: Store, keys_dir: Path) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    rotate_kek(store.engine, keys_dir)
    (keys_dir / "kek.key").rename(keys_dir.parent / "escrow-kek.key")

    vault = Vault(KeyfileProvider.from_dir(keys_dir))
    assert _get(store, vault, 1, F.PHONE) == {F.PHONE: PHONE}
    again = rotate_kek(store.engine, keys_dir)
    assert again.created is not None and again.created.path.name == "kek-3.key"


def test_a_process_started_before_rotation_reads_after_it(store: Store, keys_dir: Path) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    early = Vault(KeyfileProvider.from_dir(keys_dir))  # knows only kek.key

    rotate_kek(store.engine, keys_dir)

    assert _get(store, early, 3, F.PAN) == {F.PAN: "AFZPK7190K"}


def test_an_unfinished_rotation_is_finished_without_another_kek(
    store: Store, keys_dir: Path
) -> None:
    _fill(store.engine, Vault(KeyfileProvider.from_dir(keys_dir)))
    create_next_kek(keys_dir)  # as if a rotation stopped after writing its KEK file

    rotation = rotate_kek(store.engine, keys_dir)

    assert rotation.created is None and rotation.rewrapped == 4
    assert sorted(p.name for p in keys_dir.iterdir()) == ["kek-2.key", "kek.key"]


def test_reads_keep_working_while_a_rotation_runs(store: Store, keys_dir: Path) -> None:
    writer = Vault(KeyfileProvider.from_dir(keys_dir))
    with store.engine.begin() as conn:
        for cid in (1, 2):
            writer.put(conn, "org-a", cid, {F.PHONE: f"+4477009001{cid:02d}", F.NAME: "x y"})
    reader = Vault(KeyfileProvider.from_dir(keys_dir))
    stop = threading.Event()
    reads: list[int] = []
    failures: list[BaseException] = []

    def read_continuously() -> None:
        while not stop.is_set():
            try:
                # A fresh vault each time: no cached key, every read unwraps afresh.
                fresh = Vault(KeyfileProvider.from_dir(keys_dir)) if len(reads) % 2 else reader
                got = _get(store, fresh, 1 + len(reads) % 2, F.PHONE)
                assert got[F.PHONE].startswith("+44770090010")
                reads.append(1)
            except BaseException as exc:
                failures.append(exc)
                return

    thread = threading.Thread(target=read_continuously)
    thread.start()
    try:
        while len(reads) < 20 and thread.is_alive():
            stop.wait(0.01)
        for _ in range(3):
            rotate_kek(store.engine, keys_dir)
        mark = len(reads)
        while len(reads) < mark + 20 and thread.is_alive():
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()

    assert failures == []
    assert len(reads) >= 40
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(vault_values)) == 4
        status = key_status(conn, KeyfileProvider.from_dir(keys_dir))
    assert status.pending == 0 and len(status.kek_files) == 4
    assert len(_every_value(store, Vault(KeyfileProvider.from_dir(keys_dir)))) == 4


def test_rotation_with_kek_values_given_as_text(store: Store) -> None:
    old, new = (base64.b64encode(secrets.token_bytes(32)).decode() for _ in range(2))
    _fill(store.engine, Vault(KeyfileProvider.from_base64(old)))

    rotation = rewrap_all(store.engine, KeyfileProvider.from_base64(f"{new},{old}"))

    assert rotation.rewrapped == 4
    assert _get(store, Vault(KeyfileProvider.from_base64(new)), 1, F.PHONE) == {F.PHONE: PHONE}


def test_pg_and_sqlite_store_the_same_shapes(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    with store.engine.connect() as conn:
        lengths = conn.execute(text("SELECT customer_id, field FROM vault_values")).all()
        digests = conn.scalars(select(vault_index.c.digest)).all()
    assert len(lengths) == 7
    assert {len(d) for d in digests} == {16}


def test_the_vault_is_the_guards_value_source(store: Store, vault: Vault) -> None:
    from bpoguard.guard.service import ValueSource

    source: ValueSource = vault  # checked by mypy: the guard reads through this protocol
    _fill(store.engine, vault)
    with store.engine.connect() as conn:
        assert source.get(conn, 3, [F.PAN]) == {F.PAN: "AFZPK7190K"}


# --- batched look-up ---------------------------------------------------------------------------

_TYPED_PHONES = st.sampled_from(
    ["+447700900123", "07700 900123", "(07700) 900-123", "+447700900999", "09876 543210", "+919876543210"]
)  # fmt: skip
_TYPED_CARDS = st.sampled_from(
    ["4929000000006", "4929 0000 0000 6", "4929-0000-0000-6", "4111111111111111"]
)
_ANY_TEXT = st.text(max_size=20)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    phones=st.lists(st.one_of(_TYPED_PHONES, _ANY_TEXT), max_size=12),
    cards=st.lists(st.one_of(_TYPED_CARDS, _ANY_TEXT), max_size=12),
    client=st.sampled_from(["org-a", "org-b"]),
)
def test_lookup_many_answers_as_lookup_does_for_each_value(
    store: Store, vault: Vault, phones: list[str], cards: list[str], client: str
) -> None:
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.PHONE: PHONE, F.CARD_NUMBER: CARD})
        vault.put(conn, "org-a", 2, {F.PHONE: PHONE})  # two customers share a number
        vault.put(conn, "org-b", 3, {F.PHONE: "+919876543210", F.CARD_NUMBER: CARD})
    with store.engine.connect() as conn:
        for field, values in ((F.PHONE, phones), (F.CARD_NUMBER, cards)):
            batched = vault.lookup_many(conn, client, field, values)
            for value in values:
                try:
                    one = vault.lookup(conn, client, field, value)
                except UnicodeEncodeError:
                    assert value not in batched  # left out, not raised
                    continue
                assert batched[value] == one
            assert set(batched) <= set(values)


def test_lookup_many_splits_long_lists_into_chunks(store: Store, vault: Vault) -> None:
    # More distinct values than one IN (...) list holds, the real ones at both ends.
    numbers = [f"+4477009{n:05d}" for n in range(1_234)]
    with store.engine.begin() as conn:
        vault.put(conn, "org-a", 1, {F.PHONE: numbers[0]})
        vault.put(conn, "org-a", 2, {F.PHONE: numbers[-1]})
    with store.engine.connect() as conn:
        found = vault.lookup_many(conn, "org-a", F.PHONE, [*numbers, "07700 900000"])
    assert len(found) == len(numbers) + 1
    assert found[numbers[0]] == [1] and found[numbers[-1]] == [2]
    assert found["07700 900000"] == [1]  # the national form of the first number
    assert sum(1 for ids in found.values() if ids) == 3


def test_lookup_many_stays_within_the_client_and_knows_no_client_without_keys(
    store: Store, vault: Vault
) -> None:
    _fill(store.engine, vault)
    with store.engine.connect() as conn:
        assert vault.lookup_many(conn, "org-b", F.CARD_NUMBER, [CARD]) == {CARD: []}
        assert vault.lookup_many(conn, "org-a", F.PHONE, []) == {}
    with store.engine.begin() as conn:
        conn.execute(insert(m.Organisation).values(
            id="org-c", name="C", kind=m.OrgKind.CLIENT, country="GB", networks=[]))  # fmt: skip
        assert vault.lookup_many(conn, "org-c", F.PHONE, [PHONE]) == {PHONE: []}


def test_lookup_many_names_no_value_when_it_refuses_or_skips(store: Store, vault: Vault) -> None:
    _fill(store.engine, vault)
    with store.engine.connect() as conn:
        with pytest.raises(InputError) as refused:
            vault.lookup_many(conn, "org-a", F.NAME, ["amber owen"])
        assert "amber" not in str(refused.value)
        odd = "0770\ud800900123"  # a lone surrogate: not encodable, skipped silently
        assert vault.lookup_many(conn, "org-a", F.PHONE, [odd, PHONE]) == {PHONE: [1]}
