"""What every command reads first: the settings, from the environment; and the gateway's database."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from calcifer.config.settings import ConfigError, Settings
from calcifer.domain.errors import InvalidRequest
from calcifer.storage.database import Database, open_database, schema_status

ACTOR = "cli"  # who the audit log says made a change through a command


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


Work = Callable[[argparse.Namespace, Database], Awaitable[tuple[str, int]]]


def database_command(name: str, args: argparse.Namespace, work: Work) -> int:
    """Run a management command's `work` on the gateway's database and print what it returns; bad
    arguments (a `ValueError` or the domain's `InvalidRequest`) are exit 2 with the message."""
    settings = settings_or_report()
    if settings is None:
        return 2
    try:
        text, code = asyncio.run(
            _on_database(work, args, settings.database_url, settings.database_schema, settings.migrate)
        )
    except (ValueError, InvalidRequest) as exc:
        message = exc.message if isinstance(exc, InvalidRequest) else str(exc)
        print(f"calcifer {name}: {message}", file=sys.stderr)
        return 2
    print(text)
    return code


async def _on_database(
    work: Work, args: argparse.Namespace, url: str, schema: str | None, migrate: bool
) -> tuple[str, int]:
    database = await open_gateway_database(url, schema, migrate=migrate)
    try:
        return await work(args, database)
    finally:
        await database.aclose()
