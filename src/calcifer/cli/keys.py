"""`calcifer keys ...`: manage virtual keys straight in the database (the admin API does the same), each
change appended to the audit log with the actor `cli`."""

from __future__ import annotations

import argparse
from typing import Any

from calcifer.cli.arguments import json_object, names, usd
from calcifer.cli.context import ACTOR, database_command
from calcifer.domain.keys import KEY_ROLES, UNSET, KeyChanges, VirtualKey, issue_key
from calcifer.domain.limits import BUDGET_PERIODS
from calcifer.http import admin_changes
from calcifer.http.admin import key_view
from calcifer.storage.audit import SqlAuditLog
from calcifer.storage.database import Database
from calcifer.storage.keys import SqlKeyStore

_NONE = "none"
_ROLE_HELP = "admin: manages the whole gateway; team-admin: manages its team's keys and members"


def register(commands: Any) -> None:
    parser = commands.add_parser("keys", help="manage virtual keys in the database (CALCIFER_DATABASE_URL)")
    parser.set_defaults(handler=command)
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print its secret (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--max-budget", help="USD")
    create.add_argument("--budget-period", choices=BUDGET_PERIODS, default="total")
    create.add_argument("--models", help="comma-separated model names the key may use (default: all)")
    create.add_argument("--rpm-limit", type=int)
    create.add_argument("--tpm-limit", type=int)
    create.add_argument("--metadata", help="a JSON object")
    create.add_argument("--team-id", help="the team the key spends for (`calcifer teams`)")
    create.add_argument("--user-id", help="the user the key spends for (`calcifer users`)")
    create.add_argument("--role", choices=KEY_ROLES, help=_ROLE_HELP + " (team-admin needs --team-id)")
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    update = actions.add_parser("update", help="change a key's budget, limits, team or role")
    update.add_argument("key_id")
    update.add_argument("--max-budget")
    update.add_argument("--rpm-limit", type=int)
    update.add_argument("--tpm-limit", type=int)
    update.add_argument("--team-id", help=f"the team the key spends for (`{_NONE}`: no team)")
    update.add_argument("--role", choices=(*KEY_ROLES, _NONE), help=_ROLE_HELP + f" (`{_NONE}`: no role)")


def command(args: argparse.Namespace) -> int:
    return database_command("keys", args, _keys)


async def _keys(args: argparse.Namespace, database: Database) -> tuple[str, int]:
    store, log = SqlKeyStore(database), SqlAuditLog(database)
    if args.action == "create":
        if args.role == "team-admin" and not args.team_id:
            raise ValueError("a team-admin key needs --team-id (the team it manages)")
        key, secret = issue_key(
            args.name,
            max_budget=usd(args.max_budget),
            budget_period=args.budget_period,
            models=names(args.models),
            rpm_limit=args.rpm_limit,
            tpm_limit=args.tpm_limit,
            metadata=json_object(args.metadata),
            team_id=args.team_id,
            user_id=args.user_id,
            role=args.role,
        )
        await admin_changes.create_key(store, log, ACTOR, key, _view)
        return f"{_line(key)}\nkey: {secret}\n(store it now: it is not shown again)", 0
    if args.action == "list":
        keys = await store.list_keys(include_revoked=True)
        return "\n".join(_line(k) for k in keys) or "no keys", 0
    if args.action == "revoke":
        before = await store.get(args.key_id)
        if before is None or not await admin_changes.revoke_key(store, log, ACTOR, before, _view):
            return f"no key {args.key_id}", 1
        return f"revoked {args.key_id}", 0
    changes = KeyChanges(
        max_budget=UNSET if args.max_budget is None else usd(args.max_budget),
        rpm_limit=UNSET if args.rpm_limit is None else args.rpm_limit,
        tpm_limit=UNSET if args.tpm_limit is None else args.tpm_limit,
        team_id=_optional(args.team_id),
        role=_optional(args.role),
    )
    before = await store.get(args.key_id)
    changed = (
        None if before is None else await admin_changes.update_key(store, log, ACTOR, before, changes, _view)
    )
    if changed is None:
        return f"no key {args.key_id}", 1
    return _line(changed[0]), 0


async def _view(key: VirtualKey) -> dict[str, object]:
    return key_view(key)


def _optional(value: Any) -> Any:
    """An option's value for a change: absent is UNSET, `none` is None."""
    return UNSET if value is None else None if value == _NONE else value


def _line(key: VirtualKey) -> str:
    budget = "no budget" if key.max_budget is None else f"${key.max_budget} {key.budget_period}"
    models = ",".join(key.models) or "all models"
    state = " REVOKED" if key.revoked else ""
    role = "" if key.role is None else f"  role={key.role}" + (f" team={key.team_id}" if key.team_id else "")
    return f"{key.id}  {key.name}  {budget}  {models}  rpm={key.rpm_limit} tpm={key.tpm_limit}{role}{state}"
