"""Fixtures shared by the guard's store-backed tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from bpoguard.store import Store, parse_url

_EMPTY_VAULT = (
    "TRUNCATE vault_index, vault_values, vault_keys, customers, organisations "
    "RESTART IDENTITY CASCADE"
)


@pytest.fixture(scope="module")
def pg_store(pg_url: str) -> Iterator[Store]:
    """One scratch PostgreSQL database for the module (use empty_pg_store in tests)."""
    admin = create_engine(parse_url(pg_url), isolation_level="AUTOCOMMIT")
    name = f"bpoguard_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    store = Store(parse_url(pg_url).set(database=name).render_as_string(hide_password=False))
    store.migrate()
    try:
        yield store
    finally:
        store.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_pg_store(pg_store: Store) -> Store:
    """The module's PostgreSQL database, emptied of vault rows, customers and organisations."""
    with pg_store.engine.begin() as conn:
        conn.execute(text(_EMPTY_VAULT))
    return pg_store
