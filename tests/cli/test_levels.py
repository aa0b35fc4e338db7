"""`calcifer teams|users|customers` on a real SQLite file and a real PostgreSQL schema: they write the
same rows the admin API reads, budgets stay exact decimals, only the options given change, team members
carry their own budget, and every change is an audit-log entry by `cli` with its before and after."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from calcifer.storage.database import open_database
from calcifer.storage.directory import SqlDirectory
from tests.cli.conftest import Output, Target, audit, calcifer


def shown(capsys: Output, *argv: str) -> dict[str, Any]:
    code, out, err = calcifer(capsys, *argv)
    assert code == 0, err
    value: dict[str, Any] = json.loads(out, parse_float=Decimal)  # exact, as printed
    return value


def stored(target: Target, kind: str, item_id: str) -> Any:
    async def read() -> Any:
        database = await open_database(target[0], schema=target[1])
        try:
            return await SqlDirectory(database).get(kind, item_id)  # type: ignore[arg-type]
        finally:
            await database.aclose()

    return asyncio.run(read())


def test_a_team_is_created_shown_updated_and_deleted(target: Target, capsys: Output) -> None:
    created = shown(
        capsys, "teams", "create", "--id", "search", "--name", "Search", "--max-budget", "100.000000000001",
        "--budget-period", "weekly", "--models", "gpt-4o, claude-sonnet-4", "--rpm-limit", "600",
        "--metadata", '{"cost_centre": 7}',
    )  # fmt: skip
    assert created["max_budget"] == Decimal("100.000000000001")
    team = stored(target, "team", "search")
    assert (team.name, team.max_budget, team.budget_period) == (
        "Search",
        Decimal("100.000000000001"),
        "weekly",
    )
    assert (team.models, team.rpm_limit, team.tpm_limit) == (("gpt-4o", "claude-sonnet-4"), 600, None)
    assert team.metadata == {"cost_centre": 7}

    updated = shown(capsys, "teams", "update", "search", "--tpm-limit", "200000", "--rpm-limit", "none")
    assert (updated["tpm_limit"], updated["rpm_limit"], updated["name"]) == (200000, None, "Search")
    assert stored(target, "team", "search").max_budget == Decimal("100.000000000001")  # not given: kept
    assert shown(capsys, "teams", "update", "search", "--max-budget", "none")["max_budget"] is None

    code, out, _ = calcifer(capsys, "teams", "list")
    assert (code, out) == (0, "search  Search  no budget\n")
    assert calcifer(capsys, "teams", "delete", "search")[:2] == (0, "deleted team search\n")
    assert stored(target, "team", "search") is None
    assert calcifer(capsys, "teams", "show", "search")[:2] == (1, "no team search\n")
    assert calcifer(capsys, "teams", "list")[1] == "no teams\n"

    entries = audit(target)
    assert [(e["actor"], e["action"], e["entity"], e["entity_id"]) for e in entries] == [
        ("cli", "create", "team", "search"),
        ("cli", "update", "team", "search"),
        ("cli", "update", "team", "search"),
        ("cli", "delete", "team", "search"),
    ]
    assert entries[0]["before"] is None and entries[-1]["after"] is None
    assert (entries[1]["before"]["rpm_limit"], entries[1]["after"]["rpm_limit"]) == (600, None)
    assert entries[2]["before"]["max_budget"] == Decimal("100.000000000001")


def test_members_carry_a_budget_inside_the_team(target: Target, capsys: Output) -> None:
    shown(capsys, "teams", "create", "--id", "core", "--name", "Core", "--max-budget", "100")
    user = shown(capsys, "users", "create", "--email", "ada@example.com", "--max-budget", "60")
    assert user["id"].startswith("user_") and user["budget_period"] == "monthly"
    assert calcifer(capsys, "users", "list")[1] == f"{user['id']}  ada@example.com  $60 monthly\n"

    added = shown(capsys, "teams", "members", "add", "core", user["id"], "--max-budget", "40")
    assert (added["max_budget"], added["budget_period"]) == (40, "monthly")
    changed = shown(
        capsys,
        "teams",
        "members",
        "add",
        "core",
        user["id"],
        "--max-budget",
        "12.5",
        "--budget-period",
        "daily",
    )
    assert (changed["max_budget"], changed["budget_period"]) == (Decimal("12.5"), "daily")
    members = shown(capsys, "teams", "show", "core")["members"]
    assert [(m["user_id"], m["max_budget"]) for m in members] == [(user["id"], Decimal("12.5"))]

    assert calcifer(capsys, "teams", "members", "add", "core", "nobody")[:2] == (1, "no user nobody\n")
    assert calcifer(capsys, "teams", "members", "add", "ghost", user["id"])[:2] == (1, "no team ghost\n")
    assert calcifer(capsys, "teams", "members", "remove", "core", user["id"])[0] == 0
    assert shown(capsys, "teams", "show", "core")["members"] == []
    code, out, _ = calcifer(capsys, "teams", "members", "remove", "core", user["id"])
    assert (code, out) == (1, f"{user['id']} is not a member of team core\n")

    members_log = [e for e in audit(target) if e["entity"] == "member"]
    assert [(e["action"], e["entity_id"]) for e in members_log] == [
        ("create", f"core/{user['id']}"),
        ("update", f"core/{user['id']}"),
        ("delete", f"core/{user['id']}"),
    ]
    assert (
        members_log[1]["before"]["max_budget"] == 40 and members_log[1]["after"]["budget_period"] == "daily"
    )


def test_customers_have_their_own_budget_or_are_blocked(target: Target, capsys: Output) -> None:
    created = shown(capsys, "customers", "create", "--id", "acme-42", "--max-budget", "0.5")
    assert (created["max_budget"], created["budget_period"], created["blocked"]) == (
        Decimal("0.5"),
        "daily",
        False,
    )
    assert shown(capsys, "customers", "update", "acme-42", "--blocked")["blocked"] is True
    assert calcifer(capsys, "customers", "list")[1] == "acme-42  $0.5 daily BLOCKED\n"
    assert stored(target, "customer", "acme-42").blocked is True
    assert shown(capsys, "customers", "update", "acme-42", "--unblocked")["blocked"] is False
    code, out, _ = calcifer(capsys, "customers", "create", "--id", "acme-42")
    assert (code, out) == (1, "a customer with id acme-42 exists already\n")
    assert calcifer(capsys, "customers", "update", "nobody", "--blocked")[:2] == (1, "no customer nobody\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["teams", "create", "--name", "x", "--max-budget", "lots"], "--max-budget must be a number of USD"),
        (["teams", "create", "--name", "x", "--max-budget", "-1"], "'max_budget' must be a non-negative"),
        (["teams", "create", "--name", "x", "--rpm-limit", "fast"], "--rpm-limit must be a whole number"),
        (["teams", "create", "--name", "x", "--tpm-limit", "0"], "'tpm_limit' must be a positive integer"),
        (["users", "create", "--metadata", "[1]"], "--metadata must be a JSON object"),
        (["users", "create", "--metadata", "{"], "--metadata must be a JSON object"),
        (["customers", "create", "--id", " padded "], "'id' must be a non-empty id"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    target: Target, capsys: Output, argv: list[str], message: str
) -> None:
    code, out, err = calcifer(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(f"calcifer {argv[0]}: ") and message in err
    assert audit(target) == []
