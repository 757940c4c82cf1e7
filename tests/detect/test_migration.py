"""Migration 0009_detect creates exactly the detect tables as declared, and drops them."""

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

MINE = {"detect_alerts", "detect_evidence", "detect_risk", "detect_state"}


def _mentions(diff: list[object]) -> str:
    return repr(diff)


def test_migration_0009_matches_the_table_definitions(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    store.migrate()
    with store.engine.connect() as conn:
        assert set(inspect(conn).get_table_names()) >= MINE
        diff = compare_metadata(MigrationContext.configure(conn), metadata())
    store.dispose()
    text = _mentions(diff)
    assert not [name for name in MINE if f"'{name}'" in text], diff


def test_migration_0009_downgrade_drops_them(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    store.migrate()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008_imports")
    with store.engine.connect() as conn:
        assert not (set(inspect(conn).get_table_names()) & MINE)
    store.dispose()
