"""The database a workspace uses: connect, migrate, hand out sessions."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, column, inspect, select, table
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bpoguard.errors import StoreError
from bpoguard.store import _engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# Alembic's default version table, which env.py keeps: one row, the revision applied.
VERSION_TABLE = "alembic_version"
_FIRST_DEF = re.compile(r"^(?:def|async def|class|@)", re.MULTILINE)


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
        # Read the version table as Alembic's MigrationContext does, without importing
        # Alembic (a third of a second of every command's start-up): it is needed only
        # to migrate.
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(VERSION_TABLE):
                return None
            versions = table(VERSION_TABLE, column("version_num"))
            found = list(conn.execute(select(versions.c.version_num)).scalars())
        if len(found) > 1:
            raise StoreError(
                f"database {self.description} is at several schema revisions at once "
                f"({', '.join(sorted(found))}); bpoguard keeps one line of revisions"
            )
        return found[0] if found else None

    def head(self) -> str:
        """The newest schema revision this version of bpoguard knows."""
        return script_head(MIGRATIONS / "versions")

    def has_foreign_tables(self) -> bool:
        """True when the database holds tables but no bpoguard revision: not ours to touch."""
        with self.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        return bool(tables - {"alembic_version"}) and self.revision() is None

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to a revision (the newest by default); existing rows are kept."""
        from alembic import command  # only migrating needs Alembic

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
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg


@functools.cache
def script_head(versions: Path) -> str:
    """The head of the revision chain in a folder of Alembic revision scripts.

    Reads each script's ``revision`` and ``down_revision`` assignments without
    running it (Alembic's ScriptDirectory imports every script, and Alembic itself
    costs a third of a second to import); the head is the one revision no other
    revises. tests/test_store_head.py holds it to Alembic's own answer.
    """
    revises: dict[str, tuple[str, ...]] = {}
    for path in sorted(versions.glob("*.py")):
        assigned = _assignments(path, ("revision", "down_revision"))
        revision = assigned.get("revision")
        if not isinstance(revision, str):
            continue  # not a revision script
        down = assigned.get("down_revision")
        if isinstance(down, str):
            revises[revision] = (down,)
        else:  # None for the first revision, a tuple or list of revisions for a merge
            revises[revision] = (
                tuple(str(d) for d in down) if isinstance(down, tuple | list) else ()
            )
    superseded = {down for downs in revises.values() for down in downs}
    heads = sorted(set(revises) - superseded)
    if len(heads) != 1:
        raise StoreError(
            f"the migration scripts in {versions} have {len(heads)} heads "
            f"({', '.join(heads) or 'none'}); bpoguard keeps one line of revisions"
        )
    return heads[0]


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """Module-level constant assignments (plain or annotated) to the given names."""
    text = path.read_text(encoding="utf-8")
    # The identifiers come before the first function: parsing only that part is a tenth
    # of the work (assignments after it, which a script never has, are not seen).
    header = _FIRST_DEF.split(text, maxsplit=1)[0]
    found: dict[str, object] = {}
    for node in ast.parse(header, str(path)).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            target, value = node.target.id, node.value
        elif (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            target, value = node.targets[0].id, node.value
        else:
            continue
        if target in names and value is not None:
            found[target] = ast.literal_eval(value)
    return found
