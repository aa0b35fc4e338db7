"""Alembic environment: migrations run only through `calcifer.storage.database.open_database`, which
hands over an open connection inside its transaction (and, on PostgreSQL, under an advisory lock)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from calcifer.storage.schema import METADATA

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("Calcifer's migrations run at start-up through open_database(url), not offline")

context.configure(
    connection=connection,
    target_metadata=METADATA,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
