"""The whole schema: every module's tables, gathered for migrations."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from bpoguard.store._base import Base

# Modules that declare tables on Base. Importing them registers their tables;
# a module that owns tables adds itself here and ships an Alembic revision.
TABLE_MODULES = (
    "bpoguard.store.models",
    "bpoguard.ledger._tables",
    "bpoguard.guard.usage",
    "bpoguard.guard._tables",
    "bpoguard.guard.canary",
    "bpoguard.web._tables",
    "bpoguard.events.imports",
    "bpoguard.detect._tables",
)


def metadata() -> MetaData:
    """Base's metadata with every table module imported."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base.metadata
