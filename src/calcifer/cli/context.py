"""What every command reads first: the settings, from the environment; and the gateway's database."""

from __future__ import annotations

import os
import sys

from calcifer.config.settings import ConfigError, Settings
from calcifer.storage.database import Database, open_database, schema_status


def settings_or_report() -> Settings | None:
    """The settings, or None after printing what is wrong (the command then exits 2)."""
    try:
        return Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"calcifer: configuration error: {exc}", file=sys.stderr)
        return None


async def open_gateway_database(url: str, schema: str | None = None, *, migrate: bool = True) -> Database:
    """The database as `calcifer serve` opens it (URL and PostgreSQL schema): migrated first, or with
    `migrate=False` (CALCIFER_MIGRATE=off) never, and an older schema is a `ValueError` naming the fix."""
    database = await open_database(url, schema=schema, migrate=migrate)
    if not migrate:
        found = await schema_status(database)
        if found.pending:
            await database.aclose()
            raise ValueError(f"{found.describe()}: run `calcifer migrate` first (CALCIFER_MIGRATE=off)")
    return database
