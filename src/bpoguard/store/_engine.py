"""Turning a database URL into a working SQLAlchemy engine, with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bpoguard.errors import StoreError

SUPPORTED = ("sqlite", "postgresql")


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database file."""
    return f"sqlite:///{path}"


def parse_url(url: str) -> URL:
    """Parse and check a database URL; PostgreSQL URLs are routed to psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number, say
        raise StoreError(
            "malformed database URL; expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    if parsed.host and "@" in parsed.host:
        # An unescaped '@' in the password: the rest of the password would be
        # taken for the host name and shown in messages.
        raise StoreError("malformed database URL: write '@' in a password as %40")
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise StoreError(
            f"unsupported database {backend!r} in URL; bpoguard runs on SQLite or PostgreSQL"
        )
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: URL) -> str:
    """The URL as it may be shown to a user: never with its password."""
    return url.render_as_string(hide_password=True)


def create(url: str, **kwargs: Any) -> Engine:
    """Create an engine for a checked URL, configured for bpoguard's access pattern."""
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, **kwargs)
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except NoSuchModuleError:
        raise StoreError(f"no driver for {parsed.drivername}; install bpoguard[postgres]") from None
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"database driver not installed ({exc.name}); install bpoguard[postgres]"
        ) from None


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers proceed while one writer commits; foreign keys are
        # off by default in SQLite and we rely on them.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
