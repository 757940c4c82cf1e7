"""The guard's access tables (migration 0006) match their Table definitions, and drop cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bpoguard.store import Store
from bpoguard.store._store import MIGRATIONS
from bpoguard.store.schema import metadata

MINE = {"guard_disclosures", "export_approvals", "guard_policies"}


def _named(diff: list[object]) -> set[str]:
    """Table names that a compare_metadata difference list mentions."""
    names: set[str] = set()
    for item in diff:
        parts = item if isinstance(item, list | tuple) else [item]
        for part in parts:
            if isinstance(part, list | tuple):
                names |= _named(list(part))
                continue
            table = getattr(part, "table", None)
            for name in (getattr(part, "name", None), getattr(table, "name", None), part):
                if isinstance(name, str):
                    names.add(name)
    return names


def test_migration_0006_creates_exactly_the_declared_tables(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.migrate()
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= MINE
        diff = compare_metadata(MigrationContext.configure(conn), metadata())
    store.dispose()
    assert not (_named(diff) & MINE), diff


def test_migration_0006_downgrade_drops_them(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'g.db'}")
    store.migrate()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005_canaries")
    with store.engine.connect() as conn:
        assert not (set(inspect(conn).get_table_names()) & MINE)
    store.dispose()
