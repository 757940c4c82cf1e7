"""The database: schema, sessions, migrations. SQLite by default, PostgreSQL by URL."""

from bpoguard.store._base import Base
from bpoguard.store._engine import parse_url, sqlite_url
from bpoguard.store._store import Store

__all__ = ["Base", "Store", "parse_url", "sqlite_url"]
