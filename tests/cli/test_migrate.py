"""`calcifer migrate [--check]` on a real SQLite file and a real PostgreSQL schema: it applies what is
pending and says so, `--check` exits 1 while anything is pending, concurrent runs apply each migration
once, an unreachable database is exit 2 without the URL's password, a newer schema is left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from calcifer.cli.main import main
from calcifer.storage.database import open_database
from tests.cli.conftest import Target
from tests.storage.test_database import HEAD
from tests.storage.test_upgrade import to_first_schema


def _versions(target: Target) -> list[str]:
    async def read() -> list[str]:
        database = await open_database(target[0], schema=target[1], migrate=False)
        try:
            async with database.engine.connect() as connection:
                rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
                return list(rows.scalars())
        finally:
            await database.aclose()

    return asyncio.run(read())


def _set_version(target: Target, revision: str) -> None:
    async def write() -> None:
        database = await open_database(target[0], schema=target[1], migrate=False)
        try:
            async with database.engine.begin() as connection:
                await connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        finally:
            await database.aclose()

    asyncio.run(write())


def test_check_then_migrate_then_check(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--check"]) == 1
    out = capsys.readouterr().out
    assert "empty" in out and "0001" in out and HEAD in out and "run `calcifer migrate`" in out

    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("applied 0001, ") and f"at revision {HEAD}, the head" in out
    assert _versions(target) == [HEAD]

    assert main(["migrate"]) == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert main(["migrate", "--check"]) == 0
    assert f"at revision {HEAD}, the head" in capsys.readouterr().out


def test_only_the_pending_migrations_are_applied(target: Target, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_first_schema(target))  # a database that stopped at the first released schema
    assert main(["migrate", "--check"]) == 1
    assert "at revision 0001; pending: 0002" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.startswith("applied 0002, ")
    assert _versions(target) == [HEAD]


async def _first_schema(target: Target) -> None:
    database = await open_database(target[0], schema=target[1], migrate=False)
    try:
        async with database.engine.begin() as connection:
            if target[1] is not None:
                await connection.execute(text(f'CREATE SCHEMA "{target[1]}"'))
            await connection.run_sync(to_first_schema)
    finally:
        await database.aclose()


def test_a_failed_migration_is_rolled_back_and_exit_2(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_first_schema(target))

    async def squat() -> None:  # a table in the way of migration 0003
        database = await open_database(target[0], schema=target[1], migrate=False)
        try:
            async with database.engine.begin() as connection:
                await connection.execute(text("CREATE TABLE responses (id INTEGER)"))
        finally:
            await database.aclose()

    asyncio.run(squat())
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "calcifer migrate: the migration failed:" in err and "responses" in err
    assert _versions(target) == ["0001"]  # one transaction: 0002 was rolled back with 0003


def test_a_schema_from_a_newer_calcifer_is_left_alone(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    _set_version(target, "9999")
    capsys.readouterr()
    assert main(["migrate", "--check"]) == 0
    assert "newer than this Calcifer's head" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert _versions(target) == ["9999"]


def test_concurrent_runs_apply_each_migration_once(target: Target) -> None:
    env = {**os.environ}
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "calcifer", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], outputs
    applied = [out for out, _ in outputs if out.startswith("applied ")]
    assert len(applied) == 1, outputs  # one run migrated, the others waited for its lock and found none
    assert _versions(target) == [HEAD]


def test_an_unreachable_database_is_exit_2_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALCIFER_DATABASE_URL", "postgresql://calcifer:hunter2-secret@127.0.0.1:1/calcifer")
    assert main(["migrate", "--check"]) == 2
    err = capsys.readouterr().err
    assert "unreachable" in err and "hunter2" not in err


def test_bad_settings_and_urls_are_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALCIFER_DATABASE_URL", "mysql://u@db/calcifer")
    assert main(["migrate"]) == 2
    monkeypatch.setenv("CALCIFER_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("CALCIFER_DATABASE_SCHEMA", "calcifer")
    assert main(["migrate"]) == 2
    assert "calcifer migrate: schema must be" in capsys.readouterr().err


def test_keys_and_spend_use_the_gateways_schema_and_respect_migrate_off(
    target: Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CALCIFER_MIGRATE", "off")
    for command in (["keys", "list"], ["spend", "--by", "model"]):
        assert main(command) == 2
        assert "run `calcifer migrate` first" in capsys.readouterr().err
    assert main(["migrate", "--check"]) == 1  # they applied nothing
    assert main(["migrate"]) == 0
    assert main(["keys", "create", "--name", "ops"]) == 0
    assert main(["spend", "--by", "model"]) == 0
    assert "nothing recorded" in capsys.readouterr().out

    async def names() -> list[str]:
        database = await open_database(target[0], schema=target[1], migrate=False)
        try:
            async with database.engine.connect() as connection:
                return list((await connection.execute(text("SELECT name FROM virtual_keys"))).scalars())
        finally:
            await database.aclose()

    assert asyncio.run(names()) == ["ops"]  # in the schema the gateway uses (CALCIFER_DATABASE_SCHEMA)
