"""`calcifer tags` on a real SQLite file and a real PostgreSQL schema: it sets the `tag_budgets` rows
the gateway budgets requests by, exact decimals, and each change is an audit-log entry by `cli`."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from calcifer.domain.levels import TagBudget
from calcifer.storage.database import open_database
from calcifer.storage.directory import SqlDirectory
from tests.cli.conftest import Output, Target, audit, calcifer


def stored(target: Target, tag: str) -> TagBudget | None:
    async def read() -> TagBudget | None:
        database = await open_database(target[0], schema=target[1])
        try:
            return await SqlDirectory(database).tag_budget(tag)
        finally:
            await database.aclose()

    return asyncio.run(read())


def test_a_tag_budget_is_set_shown_listed_changed_and_deleted(target: Target, capsys: Output) -> None:
    code, out, err = calcifer(capsys, "tags", "set", "search-beta", "--max-budget", "5.000000000001")
    assert code == 0, err
    shown: dict[str, Any] = json.loads(out, parse_float=Decimal)
    assert (shown["tag"], shown["max_budget"], shown["budget_period"]) == (
        "search-beta",
        Decimal("5.000000000001"),
        "monthly",
    )
    assert stored(target, "search-beta") == TagBudget("search-beta", Decimal("5.000000000001"), "monthly")
    assert (
        calcifer(capsys, "tags", "set", "search-beta", "--max-budget", "2", "--budget-period", "daily")[0]
        == 0
    )
    assert calcifer(capsys, "tags", "set", "search-beta", "--max-budget", "3")[0] == 0  # the period is kept
    assert stored(target, "search-beta") == TagBudget("search-beta", Decimal("3"), "daily")
    assert calcifer(capsys, "tags", "list")[:2] == (0, "search-beta  $3 daily\n")
    assert json.loads(calcifer(capsys, "tags", "show", "search-beta")[1])["max_budget"] == 3
    assert calcifer(capsys, "tags", "delete", "search-beta")[:2] == (
        0,
        "deleted the budget of tag search-beta\n",
    )
    assert stored(target, "search-beta") is None
    assert calcifer(capsys, "tags", "delete", "search-beta")[0] == 1
    assert calcifer(capsys, "tags", "show", "search-beta")[0] == 1
    assert calcifer(capsys, "tags", "list")[1] == "no tag budgets\n"
    entries = [(e["actor"], e["action"], e["entity"], e["entity_id"]) for e in audit(target)]
    assert entries == [
        ("cli", "create", "tag", "search-beta"),
        ("cli", "update", "tag", "search-beta"),
        ("cli", "update", "tag", "search-beta"),
        ("cli", "delete", "tag", "search-beta"),
    ]
    assert audit(target)[1]["before"]["max_budget"] == Decimal("5.000000000001")


def test_bad_tag_budgets_are_refused_naming_the_field(target: Target, capsys: Output) -> None:
    for argv, named in (
        (("tags", "set", "t", "--max-budget", "lots"), "max_budget"),
        (("tags", "set", "t", "--max-budget", "-1"), "max_budget"),
        (("tags", "set", "t", "--max-budget", "9000001"), "max_budget"),
        (("tags", "set", " t", "--max-budget", "1"), "tag"),
    ):
        code, _, err = calcifer(capsys, *argv)
        assert code == 2 and named in err, err
    assert stored(target, "t") is None and audit(target) == []
