"""`calcifer migrate`: bring the database (CALCIFER_DATABASE_URL) to this Calcifer's schema, and exit.

`--check` only reports: exit 0 when nothing is pending, 1 when migrations are pending (a readiness gate
or an init container can wait on it). Exit 2 for a configuration error or an unreachable database.
Several runs at once are safe: they serialise on an advisory lock (PostgreSQL) or the write lock (SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from calcifer.cli.context import settings_or_report
from calcifer.storage.database import apply_migrations, open_database, schema_status
from calcifer.storage.migrator import SchemaStatus

PENDING = 1


class Unreachable(Exception):
    """The database could not be reached (the message says why)."""


def register(commands: Any) -> None:
    command = commands.add_parser("migrate", help="apply the database migrations (CALCIFER_DATABASE_URL)")
    command.add_argument(
        "--check", action="store_true", help="apply nothing; exit 1 if any migration is pending"
    )
    command.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_report()
    if settings is None:
        return 2
    try:
        text, code = asyncio.run(migrate_command(settings.database_url, settings.database_schema, args.check))
    except ValueError as exc:
        print(f"calcifer migrate: {exc}", file=sys.stderr)
        return 2
    except Unreachable as exc:
        # The driver's message names the host and the failure, never the URL's password.
        print(f"calcifer migrate: the database is unreachable: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:  # the migration itself failed (its transaction was rolled back)
        print(f"calcifer migrate: the migration failed: {_reason(exc)}", file=sys.stderr)
        return 2
    print(text)
    return code


async def migrate_command(url: str, schema: str | None, check: bool) -> tuple[str, int]:
    """What `calcifer migrate [--check]` prints, and its exit code."""
    database = await open_database(url, schema=schema, migrate=False)
    try:
        try:
            await database.ping()
        except (OSError, SQLAlchemyError) as exc:
            raise Unreachable(_reason(exc)) from None
        if check:
            found = await schema_status(database)
            if found.pending:
                return f"{found.describe()}: run `calcifer migrate`", PENDING
            return found.describe(), 0
        before = await apply_migrations(database)
    finally:
        await database.aclose()
    return _applied(before), 0


def _applied(before: SchemaStatus) -> str:
    if not before.pending:
        return before.describe()
    return f"applied {', '.join(before.pending)}: the database is at revision {before.head}, the head"


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {original}".splitlines()[0]
