"""The database a workspace uses: connect, migrate, hand out sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bpoguard.errors import StoreError
from bpoguard.store import _engine

MIGRATIONS = Path(__file__).parent / "migrations"


class Store:
    """One database (SQLite file or PostgreSQL) and its schema revision."""

    def __init__(self, url: str) -> None:
        self.url = _engine.parse_url(url)
        self.engine: Engine = _engine.create(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def description(self) -> str:
        """The URL without its password, fit for messages."""
        return _engine.describe(self.url)

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def check_reachable(self) -> None:
        """Connect once; raise StoreError saying which database could not be reached."""
        try:
            with self.engine.connect():
                pass
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection failed"
            raise StoreError(f"cannot reach database {self.description}: {reason}") from None

    def revision(self) -> str | None:
        """The schema revision the database is at, or None for an empty database."""
        self.check_reachable()
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def head(self) -> str:
        """The newest schema revision this version of bpoguard knows."""
        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def has_foreign_tables(self) -> bool:
        """True when the database holds tables but no bpoguard revision: not ours to touch."""
        with self.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        return bool(tables - {"alembic_version"}) and self.revision() is None

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to a revision (the newest by default); existing rows are kept."""
        self.check_reachable()
        with self.engine.begin() as conn:
            cfg = self._alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def require_current(self) -> None:
        """Raise StoreError unless the schema is at the newest revision."""
        current = self.revision()
        if current is None:
            raise StoreError(
                f"database {self.description} has no bpoguard schema; run bpoguard init"
            )
        if current != self.head():
            raise StoreError(
                f"database schema is at revision {current}, this bpoguard needs {self.head()}; "
                "run bpoguard upgrade"
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions.begin() as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg
