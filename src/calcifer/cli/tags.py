"""`calcifer tags list|show|set|delete`: tag budgets straight in the database, through the same flow
as the admin API's `/admin/tags` (`set_tag_budget`, `delete_tag_budget`), each change in the same audit
log with the actor `cli`."""

from __future__ import annotations

import argparse
from typing import Any

import orjson

from calcifer.cli.context import ACTOR, database_command
from calcifer.domain.limits import BUDGET_PERIODS
from calcifer.http.admin_tags import delete_tag_budget, set_tag_budget, tag_view
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import Database
from calcifer.storage.directory import SqlDirectory


def register(commands: Any) -> None:
    parser = commands.add_parser("tags", help="manage tag budgets in the database")
    parser.set_defaults(handler=command)
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="list the tags with a budget")
    actions.add_parser("show", help="show one tag's budget as JSON").add_argument("tag")
    put = actions.add_parser("set", help="set a tag's budget (created or replaced)")
    put.add_argument("tag")
    put.add_argument("--max-budget", required=True, help="USD, exact")
    put.add_argument("--budget-period", choices=BUDGET_PERIODS, help="default: the tag's, else monthly")
    actions.add_parser("delete", help="remove a tag's budget (its spend stays in reports)").add_argument(
        "tag"
    )


def command(args: argparse.Namespace) -> int:
    return database_command("tags", args, _tags)


async def _tags(args: argparse.Namespace, database: Database) -> tuple[str, int]:
    directory, log = SqlDirectory(database), SqlAuditLog(database)
    if args.action == "list":
        lines = [
            f"{b.tag}  ${format(b.max_budget, 'f')} {b.budget_period}" for b in await directory.tag_budgets()
        ]
        return "\n".join(lines) or "no tag budgets", 0
    if args.action == "set":
        body: dict[str, object] = {"max_budget": args.max_budget}
        if args.budget_period is not None:
            body["budget_period"] = args.budget_period
        budget, _ = await set_tag_budget(directory, log, ACTOR, args.tag, body)
        return _dumps(tag_view(budget)), 0
    if args.action == "delete":
        if not await delete_tag_budget(directory, log, ACTOR, args.tag):
            return f"no budget for tag {args.tag}", 1
        return f"deleted the budget of tag {args.tag}", 0
    found = await directory.tag_budget(args.tag)
    if found is None:
        return f"no budget for tag {args.tag}", 1
    return _dumps(tag_view(found)), 0


def _dumps(view: dict[str, object]) -> str:
    return orjson.dumps(view, option=orjson.OPT_INDENT_2).decode()
