"""Fixtures for the ledger tests: real SQLite files, and PostgreSQL when there is one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bpoguard.ledger import Ledger, Signer
from bpoguard.store import Store

ORIGIN = "test.example/ledger"


@pytest.fixture(scope="session")
def private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signer(private_key: Ed25519PrivateKey) -> Signer:
    return Signer(private_key, ORIGIN)


@pytest.fixture
def key_file(tmp_path: Path, private_key: Ed25519PrivateKey) -> Path:
    """The signing key as a PKCS8 PEM file, as a workspace holds it."""
    path = tmp_path / "ledger-signing.pem"
    path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A migrated, empty database: a SQLite file, then PostgreSQL when available."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("pg_db")
    store = Store(url)
    store.migrate()
    store.dispose()
    return url


@pytest.fixture
def open_ledger(signer: Signer) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers on URLs (the schema is migrated); every store is closed afterwards."""
    stores: list[Store] = []

    def make(url: str, **kwargs: object) -> Ledger:
        store = Store(url)
        store.migrate()
        stores.append(store)
        return Ledger(store, signer, **kwargs)  # type: ignore[arg-type]

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def ledger(open_ledger: Callable[..., Ledger], sqlite_url: str) -> Ledger:
    """A ledger on a fresh SQLite file."""
    return open_ledger(sqlite_url)
