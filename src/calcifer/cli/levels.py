"""`calcifer teams|users|customers ...`: manage the budget levels straight in the database, through the
same store as the admin API (`/admin/teams`, `/admin/users`, `/admin/customers`), and append each change
to the same audit log, with the actor `cli`."""

from __future__ import annotations

import argparse
from decimal import Decimal
from typing import Any, Literal

import orjson

from calcifer.cli.arguments import json_object, names, usd
from calcifer.cli.context import ACTOR, database_command
from calcifer.domain.checks import check_id
from calcifer.domain.levels import Member
from calcifer.domain.limits import BUDGET_PERIODS
from calcifer.http import admin_changes
from calcifer.http.admin_changes import Kind, member_view
from calcifer.http.admin_levels import level_view
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import Database
from calcifer.storage.directory import SqlDirectory

_KINDS: dict[str, Kind] = {"teams": "team", "users": "user", "customers": "customer"}
_NONE = "none"


def register(commands: Any) -> None:
    for plural, kind in _KINDS.items():
        parser = commands.add_parser(plural, help=f"manage {plural} and their budgets in the database")
        parser.set_defaults(handler=command, kind=kind)
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help=f"create a {kind}")
        _options(create, kind, creating=True)
        actions.add_parser("list", help=f"list {plural}")
        actions.add_parser("show", help=f"show one {kind} as JSON").add_argument("id")
        update = actions.add_parser("update", help=f"change the fields given of a {kind}")
        update.add_argument("id")
        _options(update, kind, creating=False)
        actions.add_parser("delete", help=f"delete a {kind} (its spend stays in reports)").add_argument("id")
        if kind == "team":
            _member_commands(actions)


def _options(parser: argparse.ArgumentParser, kind: Kind, *, creating: bool) -> None:
    if creating:
        parser.add_argument("--id", required=kind == "customer", help="default: generated")
    if kind == "team":
        parser.add_argument("--name", required=creating)
    if kind == "user":
        parser.add_argument("--name")
        parser.add_argument("--email")
    _budget_options(parser)
    if kind == "team":
        parser.add_argument("--models", help="comma-separated model names (empty: all)")
        parser.add_argument("--rpm-limit", help="requests per minute (`none`: no limit)")
        parser.add_argument("--tpm-limit", help="tokens per minute (`none`: no limit)")
    if kind == "customer":
        blocked = parser.add_mutually_exclusive_group()
        blocked.add_argument("--blocked", action="store_true", default=None)
        blocked.add_argument("--unblocked", dest="blocked", action="store_false")
    parser.add_argument("--metadata", help="a JSON object")


def _budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-budget", help="USD, exact (`none`: no budget)")
    parser.add_argument("--budget-period", choices=BUDGET_PERIODS)


def _member_commands(actions: Any) -> None:
    members = actions.add_parser("members", help="add, change or remove a team's members")
    member_actions = members.add_subparsers(dest="member_action", required=True)
    add = member_actions.add_parser("add", help="add a user to the team (or change their budget in it)")
    add.add_argument("id", help="the team")
    add.add_argument("user_id")
    _budget_options(add)
    remove = member_actions.add_parser("remove", help="remove a user from the team")
    remove.add_argument("id", help="the team")
    remove.add_argument("user_id")


def command(args: argparse.Namespace) -> int:
    return database_command(f"{args.kind}s", args, _levels)


async def _levels(args: argparse.Namespace, database: Database) -> tuple[str, int]:
    return await _act(args, SqlDirectory(database), SqlAuditLog(database))


async def _act(args: argparse.Namespace, directory: SqlDirectory, log: SqlAuditLog) -> tuple[str, int]:
    kind: Kind = args.kind

    async def render(item: Any) -> dict[str, object]:
        return level_view(kind, item)

    if args.action == "create":
        item = admin_changes.new_level(kind, _values(args, kind))
        created = await admin_changes.create_level(directory, log, ACTOR, kind, item, render)
        if created is None:
            return f"a {kind} with id {item.id} exists already", 1
        return _dumps(created), 0
    if args.action == "list":
        return "\n".join(_line(kind, item) for item in await directory.all(kind)) or f"no {kind}s", 0
    item = await directory.get(kind, args.id)
    if item is None:
        return f"no {kind} {args.id}", 1
    if args.action == "members":
        return await _members(args, directory, log)
    if args.action == "show":
        view = level_view(kind, item)
        if kind == "team":
            view["members"] = [member_view(m) for m in await directory.members(item.id)]
        return _dumps(view), 0
    if args.action == "delete":
        await admin_changes.delete_level(directory, log, ACTOR, kind, item, render)
        return f"deleted {kind} {item.id}", 0
    changed = await admin_changes.update_level(directory, log, ACTOR, kind, item, _values(args, kind), render)
    return _dumps(changed), 0


async def _members(args: argparse.Namespace, directory: SqlDirectory, log: SqlAuditLog) -> tuple[str, int]:
    team_id, user_id = args.id, args.user_id
    if args.member_action == "remove":
        if not await admin_changes.remove_member(directory, log, ACTOR, team_id, user_id):
            return f"{user_id} is not a member of team {team_id}", 1
        return f"removed {user_id} from team {team_id}", 0
    check_id(user_id, "user_id")
    if await directory.get("user", user_id) is None:
        return f"no user {user_id}", 1
    member = Member(team_id, user_id, **_values(args, "member"))
    await admin_changes.put_member(directory, log, ACTOR, member)
    return _dumps(member_view(member)), 0


def _values(args: argparse.Namespace, kind: Kind | Literal["member"]) -> dict[str, Any]:
    """The fields the options give (an option not given is left out: its default, or unchanged)."""
    values: dict[str, Any] = {}
    for name in ("id", "name", "email", "budget_period", "blocked"):
        if getattr(args, name, None) is not None and not (name == "id" and args.action != "create"):
            values[name] = getattr(args, name)
    if args.max_budget is not None:
        values["max_budget"] = None if args.max_budget.lower() == _NONE else usd(args.max_budget)
    if kind == "team":
        if args.models is not None:
            values["models"] = names(args.models)
        for name in ("rpm_limit", "tpm_limit"):
            if getattr(args, name) is not None:
                values[name] = _limit(name, getattr(args, name))
    if getattr(args, "metadata", None) is not None:
        values["metadata"] = json_object(args.metadata)
    return values


def _limit(name: str, text: str) -> int | None:
    if text.lower() == _NONE:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--{name.replace('_', '-')} must be a whole number or `none`") from None


def _dumps(view: dict[str, object]) -> str:
    return orjson.dumps(view, option=orjson.OPT_INDENT_2).decode()


def _line(kind: Kind, item: Any) -> str:
    budget = "no budget" if item.max_budget is None else f"${_plain(item.max_budget)} {item.budget_period}"
    label = {"team": getattr(item, "name", ""), "user": getattr(item, "email", None) or ""}.get(kind, "")
    blocked = " BLOCKED" if getattr(item, "blocked", False) else ""
    return "  ".join(part for part in (item.id, label or "", budget) if part) + blocked


def _plain(amount: Decimal) -> str:
    return format(amount, "f")
