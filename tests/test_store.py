from __future__ import annotations

import pytest
from sqlalchemy import select

from bpoguard.errors import StoreError
from bpoguard.store import Store, models


def _store(url: str) -> Store:
    store = Store(url)
    store.migrate()
    return store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_db")


def test_migrate_brings_an_empty_database_to_head(store_url: str) -> None:
    store = _store(store_url)
    assert store.revision() == store.head()
    store.require_current()
    store.dispose()


def test_migrate_twice_keeps_rows(store_url: str) -> None:
    store = _store(store_url)
    with store.session() as s:
        s.add(models.Organisation(id="org-a", name="A", kind=models.OrgKind.CLIENT, country="GB"))
    store.migrate()
    with store.session() as s:
        assert s.scalars(select(models.Organisation.id)).all() == ["org-a"]
    store.dispose()


def test_require_current_on_empty_database_says_run_init(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match="run bpoguard init"):
        store.require_current()


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "malformed database URL"),
        ("mysql://u:p@localhost/x", "unsupported database 'mysql'"),
    ],
)
def test_bad_urls_are_refused_with_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Store(url)


def test_unreachable_postgres_is_reported_without_the_password() -> None:
    store = Store("postgresql://user:hunter2@127.0.0.1:1/db")
    with pytest.raises(StoreError) as info:
        store.check_reachable()
    assert "cannot reach database" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_upgrade_from_the_first_revision_keeps_every_row(store_url: str) -> None:
    store = Store(store_url)
    store.migrate("0001_foundation")
    with store.session() as s:
        s.add(models.Organisation(id="org-a", name="A", kind=models.OrgKind.CLIENT, country="GB"))
        s.flush()
        s.add(models.Customer(id=7, client_id="org-a", ref="A-7", country="GB"))
    assert store.revision() == "0001_foundation"
    store.migrate()
    assert store.revision() == store.head()
    with store.session() as s:
        assert s.scalars(select(models.Customer.ref)).all() == ["A-7"]
    store.dispose()
