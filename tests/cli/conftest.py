"""The database every management command test runs against: a SQLite file and a PostgreSQL schema,
named in the environment as `calcifer` reads it."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from calcifer.cli.main import main
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import open_database
from tests.storage.conftest import POSTGRES_URL, _drop_schema, _postgres_reachable

Output = pytest.CaptureFixture[str]
Target = tuple[str, str | None]  # the database URL and the PostgreSQL schema (None on SQLite)


@pytest.fixture(params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Target]:
    """An empty database of each kind, named in the environment as `calcifer` reads it."""
    schema: str | None = None
    if request.param == "postgresql":
        if not asyncio.run(_postgres_reachable()):
            message = f"PostgreSQL is not reachable at {POSTGRES_URL}: its CLI tests did not run"
            if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
                pytest.fail(message)
            pytest.skip(message)
        url, schema = POSTGRES_URL, f"calcifer_cli_{uuid.uuid4().hex[:16]}"
        monkeypatch.setenv("CALCIFER_DATABASE_SCHEMA", schema)
    else:
        url = f"sqlite:///{tmp_path / 'calcifer.db'}"
        monkeypatch.delenv("CALCIFER_DATABASE_SCHEMA", raising=False)
    monkeypatch.setenv("CALCIFER_DATABASE_URL", url)
    yield url, schema
    if schema is not None:
        asyncio.run(_drop_schema(schema))


def calcifer(capsys: Output, *argv: str) -> tuple[int, str, str]:
    """Run `calcifer argv...`: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def audit(target: Target) -> list[dict[str, Any]]:
    """The audit log, oldest first, its money as exact `Decimal`s."""

    async def read() -> list[dict[str, Any]]:
        database = await open_database(target[0], schema=target[1])
        try:
            entries = await SqlAuditLog(database).entries()
        finally:
            await database.aclose()
        newest_first = json.loads(orjson.dumps(entries), parse_float=Decimal)
        return list(newest_first[::-1])

    return asyncio.run(read())
