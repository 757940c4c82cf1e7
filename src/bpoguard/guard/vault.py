"""The vault: customer field values encrypted at rest, field by field, and blind indexes.

Each value is sealed with AES-256-GCM under its client's data key; the
customer id, field name and key version are the associated data, so a blob
copied to another record or field does not decrypt. Exact-match look-ups use
keyed blind indexes (HMAC-SHA256 of the normalised value under the client's
separate index key), never a scan that decrypts.

Every function takes a SQLAlchemy Connection: the caller owns the transaction,
so the vault composes with the guard, the loader and the simulator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    LargeBinary,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from bpoguard.errors import BpoguardError, InputError
from bpoguard.fields import FieldType
from bpoguard.guard._tables import vault_index, vault_keys, vault_values
from bpoguard.guard.keys import (
    NONCE_BYTES,
    KekFile,
    KeyfileProvider,
    KeyProvider,
    create_next_kek,
    new_key,
    seal,
)
from bpoguard.store import models as m
from bpoguard.store.fast import Prepared, run
from bpoguard.validators import normalise

DATA = "data"
INDEX = "index"
KEY_VERSION = 1  # data-key rotation (re-encrypting values) would add version 2
_FIELD_BY_NAME: Mapping[str, FieldType] = {f.value: f for f in FieldType}
DIGEST_BYTES = 16  # 128 bits: collisions negligible for any client's customer count
CHUNK = 500  # ids per IN (...) list: well inside SQLite's and PostgreSQL's bind limits

# Exact values worth finding a customer by, and high in entropy. Names, dates of
# birth, sort codes and balances are not indexed: few distinct values would let
# anyone with the database count who shares one.
INDEXED: frozenset[FieldType] = frozenset(
    {
        FieldType.PHONE,
        FieldType.EMAIL,
        FieldType.ACCOUNT_NUMBER,
        FieldType.CARD_NUMBER,
        FieldType.IBAN,
        FieldType.PASSPORT_NUMBER,
        FieldType.DRIVING_LICENCE,
        FieldType.NINO,
        FieldType.PAN,
    }
)


class VaultError(BpoguardError):
    """A stored value does not decrypt, or a request of the vault cannot be honoured."""


# --- pure helpers ----------------------------------------------------------------------------


def key_context(client_id: str, version: int, purpose: str) -> bytes:
    """What a wrapped client key is bound to: moving it to another client or purpose fails."""
    return f"bpoguard dek|{client_id}|{version}|{purpose}".encode()


def value_aad(customer_id: int, field_: FieldType, key_version: int) -> bytes:
    """Associated data of one value: swapping blobs between records or fields fails."""
    return f"{customer_id}|{field_.value}|{key_version}".encode()


def encrypt_value(
    key: bytes, customer_id: int, field_: FieldType, version: int, value: str
) -> bytes:
    """Seal one field value for one customer."""
    return seal(key, value.encode("utf-8"), value_aad(customer_id, field_, version))


def decrypt_value(
    key: bytes, customer_id: int, field_: FieldType, version: int, blob: bytes
) -> str:
    """Open one field value; VaultError (never garbage) if it was altered or moved."""
    return _open(AESGCM(key), customer_id, field_, version, blob)


@lru_cache(maxsize=1024)
def _names(fields: tuple[FieldType | str, ...]) -> Mapping[str, FieldType]:
    # A purpose asks for the same few fields on every view of its calls: the
    # stored names to open, and the member each is, worked out once per tuple.
    members = [FieldType(f) for f in fields]  # ValueError naming an unknown field
    return MappingProxyType({f.value: f for f in members})


def _open(
    aead: AESGCM,
    customer_id: int,
    field_: FieldType,
    version: int,
    blob: bytes,
    name: str | None = None,
) -> str:
    """:func:`decrypt_value` with the key's cipher already made (``name``: the field's, if known)."""
    # The associated data written from the field's name as stored, when the caller has
    # it: the same bytes as value_aad, without the enum's attribute look-up per field.
    aad = (
        f"{customer_id}|{name}|{version}".encode()
        if name
        else value_aad(customer_id, field_, version)
    )
    try:
        if len(blob) < NONCE_BYTES + 16:
            raise InvalidTag
        plain = aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise VaultError(
            f"customer {customer_id} {field_.value} does not decrypt: the stored value was "
            "altered, or copied from another record or field"
        ) from None
    return plain.decode("utf-8")


def blind_digest(index_key: bytes, field_: FieldType, canonical: str) -> bytes:
    """HMAC-SHA256(index key, field || 0x00 || normalised value), truncated to 16 bytes."""
    message = field_.value.encode() + b"\x00" + canonical.encode("utf-8")
    # hmac.digest: the one-shot C path, the same bytes as hmac.new(...).digest().
    return hmac.digest(index_key, message, hashlib.sha256)[:DIGEST_BYTES]


_BLOCK = 64  # SHA-256's block size in bytes (RFC 2104's B)
_IPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x36 for x in range(256)))
_OPAD = bytes.maketrans(bytes(range(256)), bytes(x ^ 0x5C for x in range(256)))


class BlindDigester:
    """:func:`blind_digest` for one index key and field, for digesting many values.

    HMAC (RFC 2104) hashes the key's inner and outer pads before any message;
    here they (and the field's prefix) are hashed once and the two SHA-256
    states copied per value: about a third of what ``hmac.digest`` costs a value,
    the same bytes (a test holds it to :func:`blind_digest`).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, index_key: bytes, field_: FieldType) -> None:
        key = index_key if len(index_key) <= _BLOCK else hashlib.sha256(index_key).digest()
        key = key.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._inner.update(field_.value.encode() + b"\x00")
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def __call__(self, canonical: str) -> bytes:
        """The blind-index digest of one normalised value."""
        inner = self._inner.copy()
        inner.update(canonical.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:DIGEST_BYTES]

    def many(self, canonicals: Iterable[str]) -> dict[str, bytes]:
        """Each normalised value -> its digest, as calling the digester on each gives.

        A value that cannot be encoded as UTF-8 (a lone surrogate) is left out. The
        loop is this method's own, its look-ups bound once: a third less a value
        than a call each (tens of thousands a dump).
        """
        out: dict[str, bytes] = {}
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        for canonical in canonicals:
            try:
                data = canonical.encode("utf-8")
            except UnicodeEncodeError:
                continue  # not text any customer value can be; an error would quote it
            inner = inner_copy()
            inner.update(data)
            outer = outer_copy()
            outer.update(inner.digest())
            out[canonical] = outer.digest()[:DIGEST_BYTES]
        return out


@dataclass(frozen=True)
class ClientKeys:
    """A client's unwrapped keys; never printed."""

    client_id: str
    version: int
    data: bytes = field(repr=False)
    index: bytes = field(repr=False)


# --- statements, built once --------------------------------------------------------------------

_KEYS_OF = (
    select(vault_keys.c.version, vault_keys.c.purpose, vault_keys.c.wrapped)
    .where(vault_keys.c.client_id == bindparam("client_id"))
    .order_by(vault_keys.c.version.desc())
)
# Read before every batched look-up (tens a dump): on the driver, not through the ORM layer.
_KEYS_OF_CLIENT = Prepared(_KEYS_OF)
_VALUES = (
    select(
        vault_values.c.field,
        vault_values.c.key_version,
        vault_values.c.blob,
        m.Customer.client_id,
        vault_keys.c.wrapped,
    )
    .join(m.Customer, m.Customer.id == vault_values.c.customer_id)
    .join(
        vault_keys,
        and_(
            vault_keys.c.client_id == m.Customer.client_id,
            vault_keys.c.version == vault_values.c.key_version,
            vault_keys.c.purpose == DATA,
        ),
    )
)
_VALUES_OF = _VALUES.where(vault_values.c.customer_id == bindparam("customer_id"))
# Every field of one customer (a dozen rows at most): cheaper to read them all on the
# driver and open only those asked for than to expand an IN list through SQLAlchemy
# on every view.
_VALUES_OF_CUSTOMER = Prepared(_VALUES_OF)
# One field of one customer (a reveal, a check of a partial value in a dump): its one
# row by the primary key, not the dozen read and converted for the one opened.
_VALUE_OF_CUSTOMER = Prepared(_VALUES_OF.where(vault_values.c.field == bindparam("field")))
# Some fields of many customers (the partial values of a block of a dump checked at once):
# one statement a few hundred customers, by the primary key.
_VALUES_OF_MANY = _VALUES.add_columns(vault_values.c.customer_id).where(
    vault_values.c.customer_id.in_(bindparam("ids", expanding=True)),
    vault_values.c.field.in_(bindparam("fields", expanding=True)),
)
_LOOKUP = select(vault_index.c.customer_id).where(
    vault_index.c.client_id == bindparam("client_id"),
    vault_index.c.field == bindparam("field"),
    vault_index.c.digest == bindparam("digest"),
)


def _lookup_in(size: int) -> Select[tuple[bytes, int]]:
    """The batched look-up with ``size`` digest places (:func:`_probe` compiles it).

    An expanding IN list is compiled afresh by SQLAlchemy on every call (a tenth
    of a batch); fixed sizes compile once, and a shorter list is padded with its
    last digest (IN is a set: the rows come back once).
    """
    places = [bindparam(f"d{i}", type_=LargeBinary(DIGEST_BYTES)) for i in range(size)]
    return select(vault_index.c.digest, vault_index.c.customer_id).where(
        vault_index.c.client_id == bindparam("client_id"),
        vault_index.c.field == bindparam("field"),
        vault_index.c.digest.in_(places),
    )


# Digest places per statement: a few sizes, so that a handful of values is not sent
# as CHUNK of them; CHUNK stays well inside SQLite's and PostgreSQL's bind limits.
_LOOKUP_SIZES = (8, 64, CHUNK)
_LOOKUP_IN = {size: _lookup_in(size) for size in _LOOKUP_SIZES}
_OWNED = select(m.Customer.id).where(
    m.Customer.client_id == bindparam("client_id"),
    m.Customer.id.in_(bindparam("ids", expanding=True)),
)


class Vault:
    """Encrypts, stores, decrypts and finds customer field values for every client."""

    def __init__(self, keys: KeyProvider) -> None:
        self._keys = keys
        # Unwrapped keys by (context, wrapped blob): a pure memo of unwrap, so a
        # rolled-back key or a re-wrapped one can never be served stale.
        self._unwrapped: dict[tuple[bytes, bytes], bytes] = {}
        self._ciphers: dict[tuple[bytes, bytes], AESGCM] = {}
        # The same ciphers by the row's own (client, version, wrapped key), so that a
        # read does not format the key's context for each value it opens.
        self._ciphers_by_key: dict[tuple[str, int, bytes], AESGCM] = {}
        self._lock = threading.Lock()

    @property
    def keys(self) -> KeyProvider:
        """The provider of the key-encryption key."""
        return self._keys

    # -- writing ------------------------------------------------------------------------------

    def ensure_keys(self, conn: Connection, client_id: str) -> ClientKeys:
        """The client's current keys, created (random, wrapped) on first use."""
        found = self._client_keys(conn, client_id)
        if found is not None:
            return found
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "client_id": client_id,
                "version": KEY_VERSION,
                "purpose": purpose,
                "wrapped": self._keys.wrap(new_key(), key_context(client_id, KEY_VERSION, purpose)),
                "kek_id": self._keys.key_id,
                "created_at": now,
            }
            for purpose in (DATA, INDEX)
        ]
        try:
            conn.execute(insert(vault_keys), rows)
        except IntegrityError:
            raise VaultError(
                f"keys for client {client_id} could not be created (unknown client, or "
                "another process created them at the same moment: run again)"
            ) from None
        created = self._client_keys(conn, client_id)
        assert created is not None
        return created

    def put(
        self,
        conn: Connection,
        client_id: str,
        customer_id: int,
        values: Mapping[FieldType, str],
    ) -> None:
        """Store validated, normalised values of one customer, replacing those fields."""
        self.put_many(conn, client_id, [(customer_id, values)])

    def put_many(
        self,
        conn: Connection,
        client_id: str,
        records: Sequence[tuple[int, Mapping[FieldType, str]]],
        clear: Collection[FieldType] = (),
    ) -> int:
        """Store many customers' values; fields given or in ``clear`` are replaced. Returns values.

        Values must already be validated and normalised (the loader does it).
        """
        ids = [customer_id for customer_id, _ in records]
        if len(set(ids)) != len(ids):
            raise VaultError("a customer appears twice in one write")
        if not records:
            return 0
        keys = self.ensure_keys(conn, client_id)
        self._check_owner(conn, client_id, ids)
        fields = {f.value for f in clear} | {f.value for _, vals in records for f in vals}
        _forget(conn, ids, fields)
        value_rows, index_rows = _rows(keys, records)
        if value_rows:
            conn.execute(insert(vault_values), value_rows)
        if index_rows:
            conn.execute(insert(vault_index), index_rows)
        return len(value_rows)

    def delete(self, conn: Connection, customer_id: int, fields: Collection[FieldType]) -> None:
        """Remove some fields of a customer, values and index entries both."""
        _forget(conn, [customer_id], {f.value for f in fields})

    # -- reading ------------------------------------------------------------------------------

    def get(
        self, conn: Connection, customer_id: int, fields: Sequence[FieldType]
    ) -> dict[FieldType, str]:
        """Decrypt only the fields asked for; fields the customer lacks are left out."""
        if not fields:
            return {}
        wanted = _names(fields if isinstance(fields, tuple) else tuple(fields))
        if len(wanted) == 1:
            (only,) = wanted
            rows = _VALUE_OF_CUSTOMER.all(conn, {"customer_id": customer_id, "field": only})
        else:
            rows = _VALUES_OF_CUSTOMER.all(conn, {"customer_id": customer_id})
        found: dict[FieldType, str] = {}
        for name, version, blob, client_id, wrapped in rows:
            field_ = wanted.get(name)
            if field_ is None:
                continue
            aead = self._cipher(client_id, version, wrapped)
            found[field_] = _open(aead, customer_id, field_, version, blob, name)
        return found

    def get_many(
        self, conn: Connection, customer_ids: Iterable[int], fields: Sequence[FieldType]
    ) -> dict[int, dict[FieldType, str]]:
        """:meth:`get` for many customers at once: each customer given -> its fields asked for.

        Every customer given gets an entry, empty when it holds none of the fields;
        a few statements for hundreds of customers, instead of one each.
        """
        ids = list(dict.fromkeys(customer_ids))
        found: dict[int, dict[FieldType, str]] = {customer_id: {} for customer_id in ids}
        if not fields or not ids:
            return found
        wanted = _names(fields if isinstance(fields, tuple) else tuple(fields))
        names = sorted(wanted)
        for chunk in _chunks(ids):
            rows = conn.execute(_VALUES_OF_MANY, {"ids": chunk, "fields": names})
            for name, version, blob, client_id, wrapped, customer_id in rows:
                field_ = wanted[name]
                aead = self._cipher(client_id, version, wrapped)
                found[customer_id][field_] = _open(aead, customer_id, field_, version, blob, name)
        return found

    def lookup(
        self,
        conn: Connection,
        client_id: str,
        field_: FieldType,
        value: str,
        country: str | None = None,
    ) -> list[int]:
        """Ids of the client's customers whose field equals value, after normalising both.

        ``country`` reads national phone numbers; the client's own country by default.
        """
        field_ = FieldType(field_)
        if field_ not in INDEXED:
            known = ", ".join(sorted(f.value for f in INDEXED))
            raise InputError(f"{field_.value} is not indexed for look-up; indexed: {known}")
        keys = self._client_keys(conn, client_id)
        if keys is None:
            return []
        canonical = normalise(field_, value, country or _client_country(conn, client_id))
        digest = blind_digest(keys.index, field_, canonical)
        params = {"client_id": client_id, "field": field_.value, "digest": digest}
        return sorted(conn.scalars(_LOOKUP, params))

    def lookup_many(
        self,
        conn: Connection,
        client_id: str,
        field_: FieldType,
        values: Iterable[str],
        country: str | None = None,
        *,
        normalised: bool = False,
    ) -> dict[str, list[int]]:
        """:meth:`lookup` for many values at once: each value given -> ids of its customers.

        Each value is normalised and digested as :meth:`lookup` does, and the digests
        are sent in lists of :data:`CHUNK` (one statement a list, never a decryption).
        Every value gets an entry, empty when nothing matches. A value that cannot be
        encoded as UTF-8 (a lone surrogate), on which :meth:`lookup` would fail, is
        left out: no customer holds it, and no message names it. ``normalised`` says
        the values are already in the canonical form :func:`~bpoguard.validators.validate`
        returns for this country, so they are digested as they are (normalising is
        idempotent, so the answers are the same).
        """
        field_ = FieldType(field_)
        if field_ not in INDEXED:
            known = ", ".join(sorted(f.value for f in INDEXED))
            raise InputError(f"{field_.value} is not indexed for look-up; indexed: {known}")
        wanted = list(dict.fromkeys(values))
        if not wanted:
            return {}
        keys = self._client_keys(conn, client_id)
        if keys is None:
            return {value: [] for value in wanted}
        if not normalised:
            country = country or _client_country(conn, client_id)
        if normalised:
            digest_of = BlindDigester(keys.index, field_).many(wanted)
        else:
            canonical_of = {value: normalise(field_, value, country or "") for value in wanted}
            digests = BlindDigester(keys.index, field_).many(set(canonical_of.values()))
            digest_of = {v: digests[c] for v, c in canonical_of.items() if c in digests}
        found: dict[bytes, list[int]] = {}
        for digest_, customer_id in _find_digests(conn, client_id, field_, digest_of.values()):
            ids = found.get(digest_)
            if ids is None:
                found[digest_] = [customer_id]
            else:
                ids.append(customer_id)
        for ids in found.values():
            if len(ids) > 1:  # most values are one customer's: no sort for them
                ids.sort()
        # Most values of a dump match nothing: a fresh empty list each, as lookup gives.
        return {value: list(found.get(digest, ())) for value, digest in digest_of.items()}

    # -- keys ---------------------------------------------------------------------------------

    def rewrap(self, conn: Connection, new_keys: KeyProvider) -> int:
        """Re-wrap every client key not yet under new_keys' KEK; returns how many.

        The client keys themselves do not change, so no value is re-encrypted and
        readers holding either wrapping keep working.
        """
        rows = conn.execute(select(vault_keys).where(vault_keys.c.kek_id != new_keys.key_id))
        count = 0
        for row in rows.all():
            context = key_context(row.client_id, row.version, row.purpose)
            key = self._unwrap(context, row.wrapped)
            conn.execute(
                update(vault_keys)
                .where(
                    vault_keys.c.client_id == row.client_id,
                    vault_keys.c.version == row.version,
                    vault_keys.c.purpose == row.purpose,
                )
                .values(wrapped=new_keys.wrap(key, context), kek_id=new_keys.key_id)
            )
            count += 1
        return count

    def _client_keys(self, conn: Connection, client_id: str) -> ClientKeys | None:
        rows = _KEYS_OF_CLIENT.all(conn, {"client_id": client_id})
        if not rows:
            return None
        version = rows[0][0]
        wrapped = {purpose: blob for version_, purpose, blob in rows if version_ == version}
        if set(wrapped) != {DATA, INDEX}:
            raise VaultError(f"client {client_id} has an incomplete key set (version {version})")
        data = self._unwrap(key_context(client_id, version, DATA), wrapped[DATA])
        index = self._unwrap(key_context(client_id, version, INDEX), wrapped[INDEX])
        return ClientKeys(client_id, version, data, index)

    def _cipher(self, client_id: str, version: int, wrapped: bytes) -> AESGCM:
        """The cipher of a stored row's data key, by the row's own (client, version, key)."""
        aead = self._ciphers_by_key.get((client_id, version, wrapped))
        if aead is None:
            aead = self._aead(key_context(client_id, version, DATA), wrapped)
            with self._lock:
                self._ciphers_by_key[(client_id, version, wrapped)] = aead
        return aead

    def _aead(self, context: bytes, wrapped: bytes) -> AESGCM:
        """The data key's cipher, made once per key (its key schedule is not free)."""
        memo = (context, wrapped)
        aead = self._ciphers.get(memo)
        if aead is None:
            aead = AESGCM(self._unwrap(context, wrapped))
            with self._lock:
                self._ciphers[memo] = aead
        return aead

    def _unwrap(self, context: bytes, wrapped: bytes) -> bytes:
        memo = (context, wrapped)
        key = self._unwrapped.get(memo)
        if key is None:
            key = self._keys.unwrap(wrapped, context)
            with self._lock:
                self._unwrapped[memo] = key
        return key

    def _check_owner(self, conn: Connection, client_id: str, ids: Sequence[int]) -> None:
        owned: set[int] = set()
        for chunk in _chunks(ids):
            owned.update(conn.scalars(_OWNED, {"client_id": client_id, "ids": chunk}))
        strays = [i for i in ids if i not in owned]
        if strays:
            shown = ", ".join(str(i) for i in strays[:5])
            raise VaultError(f"not customers of client {client_id}: {shown}")


def _rows(
    keys: ClientKeys, records: Sequence[tuple[int, Mapping[FieldType, str]]]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    values: list[dict[str, object]] = []
    index: list[dict[str, object]] = []
    for customer_id, fields in records:
        for field_, value in fields.items():
            blob = encrypt_value(keys.data, customer_id, field_, keys.version, value)
            values.append({"customer_id": customer_id, "field": field_.value,
                           "key_version": keys.version, "blob": blob})  # fmt: skip
            if field_ in INDEXED:
                digest = blind_digest(keys.index, field_, value)
                index.append({"client_id": keys.client_id, "field": field_.value,
                              "digest": digest, "customer_id": customer_id})  # fmt: skip
    return values, index


def _forget(conn: Connection, ids: Sequence[int], fields: Collection[str]) -> None:
    if not fields:
        return
    names = sorted(fields)
    for chunk in _chunks(ids):
        conn.execute(
            delete(vault_values).where(
                vault_values.c.customer_id.in_(chunk), vault_values.c.field.in_(names)
            )
        )
        conn.execute(
            delete(vault_index).where(
                vault_index.c.customer_id.in_(chunk), vault_index.c.field.in_(names)
            )
        )


def _find_digests(
    conn: Connection, client_id: str, field_: FieldType, digests: Iterable[bytes]
) -> Iterator[tuple[Any, ...]]:
    """(digest, customer id) for each index entry of the client's field among the digests."""
    # In order: each list's probes then walk the index from one end of the client's
    # field to the other, neighbours sharing its pages (a tenth less time a probe on
    # the 12.4 M-row index of a 90-day world).
    distinct = sorted(set(digests))
    name = field_.value
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(distinct), CHUNK):
            chunk = distinct[start : start + CHUNK]
            size = next(n for n in _LOOKUP_SIZES if n >= len(chunk))
            padded = chunk + chunk[-1:] * (size - len(chunk))
            sql, names = _probe(conn.dialect, size)
            if names is None:  # the driver's positional style, in the statement's own order
                params: Sequence[object] | dict[str, object] = [client_id, name, *padded]
            else:
                params = {
                    "client_id": client_id,
                    "field": name,
                    **dict(zip(names, padded, strict=True)),
                }
            yield from run(conn, cursor, sql, params).fetchall()
    finally:
        cursor.close()


_PROBES: dict[tuple[str, int], tuple[str, tuple[str, ...] | None]] = {}


def _probe(dialect: Dialect, size: int) -> tuple[str, tuple[str, ...] | None]:
    """The batched look-up's SQL for ``size`` digests, and its digest names if bound by name.

    Compiled once per dialect and size, and run on the driver's cursor as it is: the
    parameters go to the driver as built, not through a binding layer (the bytes and
    strings need no conversion), and the rows come back as the driver gives them
    (bytes and integers on both SQLite and psycopg).
    """
    memo = (dialect.name, size)
    found = _PROBES.get(memo)
    if found is None:
        compiled = _LOOKUP_IN[size].compile(dialect=dialect)
        places = _PLACE_NAMES[:size]
        if compiled.positional:
            order = tuple(compiled.positiontup or ())
            # The positional list is built as (client, field, digests...): hold it to that.
            if order != ("client_id", "field", *places):
                raise AssertionError(f"unexpected parameter order in the look-up: {order[:3]}")
            found = (compiled.string, None)
        else:
            found = (compiled.string, places)
        _PROBES[memo] = found
    return found


_PLACE_NAMES = tuple(f"d{i}" for i in range(CHUNK))


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def _client_country(conn: Connection, client_id: str) -> str:
    country = conn.scalar(select(m.Organisation.country).where(m.Organisation.id == client_id))
    if country is None:
        raise InputError(f"unknown client {client_id}")
    return country


# --- status and rotation ---------------------------------------------------------------------


@dataclass(frozen=True)
class KeyStatus:
    """What the vault holds and which KEKs wrap its client keys."""

    kek_id: str  # the current KEK
    clients: int
    client_keys: int
    values: int
    index_entries: int
    wrapped_by: dict[str, int]  # KEK id -> client keys it wraps
    kek_files: tuple[KekFile, ...] = ()

    @property
    def pending(self) -> int:
        """Client keys not yet wrapped by the current KEK."""
        return sum(n for kek, n in self.wrapped_by.items() if kek != self.kek_id)

    @property
    def retirable(self) -> tuple[KekFile, ...]:
        """KEK files no client key needs any more (keep them while older backups exist)."""
        return tuple(
            f for f in self.kek_files if f.key_id != self.kek_id and f.key_id not in self.wrapped_by
        )


def key_status(conn: Connection, keys: KeyProvider) -> KeyStatus:
    """Count what the vault holds, and which KEK wraps how many client keys."""
    by_kek = conn.execute(
        select(vault_keys.c.kek_id, func.count()).group_by(vault_keys.c.kek_id)
    ).all()
    files = keys.files if isinstance(keys, KeyfileProvider) else ()
    return KeyStatus(
        kek_id=keys.key_id,
        clients=conn.scalar(select(func.count(func.distinct(vault_keys.c.client_id)))) or 0,
        client_keys=sum(n for _, n in by_kek),
        values=conn.scalar(select(func.count()).select_from(vault_values)) or 0,
        index_entries=conn.scalar(select(func.count()).select_from(vault_index)) or 0,
        wrapped_by={kek: n for kek, n in by_kek},
        kek_files=files,
    )


@dataclass(frozen=True)
class Rotation:
    """What a KEK rotation did."""

    created: KekFile | None  # the new KEK file, None when finishing an earlier rotation
    rewrapped: int
    status: KeyStatus


def rotate_kek(engine: Engine, keys_dir: Path) -> Rotation:
    """Write a new KEK file, then re-wrap every client key under it in one transaction.

    Readers keep working throughout: the old KEK stays on disk and readable, and
    providers reading the folder pick up the new one when they meet it. When an
    earlier rotation did not finish, this one finishes it without a new KEK.
    """
    before = KeyfileProvider.from_dir(keys_dir)
    with engine.connect() as conn:
        pending = key_status(conn, before).pending
    created = None if pending else create_next_kek(keys_dir)
    provider = KeyfileProvider.from_dir(keys_dir)
    return _rewrap_all(engine, provider, created)


def rewrap_all(engine: Engine, keys: KeyProvider) -> Rotation:
    """Re-wrap every client key under the provider's current KEK (a KMS, or KEKs given as text)."""
    return _rewrap_all(engine, keys, None)


def _rewrap_all(engine: Engine, keys: KeyProvider, created: KekFile | None) -> Rotation:
    with engine.begin() as conn:
        count = Vault(keys).rewrap(conn, keys)
        status = key_status(conn, keys)
    return Rotation(created, count, status)


__all__ = [
    "INDEXED",
    "BlindDigester",
    "KeyStatus",
    "Rotation",
    "Vault",
    "VaultError",
    "blind_digest",
    "decrypt_value",
    "encrypt_value",
    "key_status",
    "rewrap_all",
    "rotate_kek",
]
