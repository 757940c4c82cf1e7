"""Alembic environment: bpoguard always passes its own connection in."""

from __future__ import annotations

from alembic import context

from bpoguard.store import schema

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=schema.metadata(),
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
