"""The audited changes to keys, teams, users, customers and team members: the one flow both the admin
API (`/admin/keys`, `/admin/teams`, ...) and the CLI (`calcifer keys|teams|users|customers`) run.

Each function changes the store and appends the change to the audit log (`log`, `None` when there is
none) as `who` made it. `view` renders the thing for the log: the admin API's view carries the live
spend, the CLI's does not. (Tag budgets have theirs in `admin_tags`: `set_tag_budget`.)
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from calcifer.domain.keys import KeyChanges, KeyStore, VirtualKey
from calcifer.domain.levels import Customer, Member, Team, User
from calcifer.http.wire import money

Kind = Literal["team", "user", "customer"]
View = Callable[[Any], Awaitable[dict[str, object]]]
_TYPES: dict[Kind, Any] = {"team": Team, "user": User, "customer": Customer}


async def record(
    log: Any, who: str, action: str, entity: str, entity_id: str, before: object, after: object
) -> None:
    """Append one change to the audit log (nothing without one)."""
    if log is not None:
        await log.append(who, action, entity, entity_id, _plain(before), _plain(after))


def _plain(value: object) -> object:
    """A JSON value for the audit log (money stays an exact number)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value  # money is an orjson.Fragment: an exact JSON number


def new_level(kind: Kind, values: dict[str, Any]) -> Any:
    """A new team, user or customer from its fields (an id generated when `values` has none)."""
    return _TYPES[kind](**{"id": f"{kind}_{secrets.token_hex(6)}", "created_at": datetime.now(UTC), **values})


async def create_level(
    directory: Any, log: Any, who: str, kind: Kind, item: Any, view: View
) -> dict[str, object] | None:
    """Store a new level; its view, or None when its id is taken."""
    if not await directory.create(item):
        return None
    after = await view(item)
    await record(log, who, "create", kind, item.id, None, after)
    return after


async def update_level(
    directory: Any, log: Any, who: str, kind: Kind, item: Any, values: dict[str, Any], view: View
) -> dict[str, object]:
    """Change the fields `values` gives of a stored level; its new view."""
    changed = replace(item, **values)
    await directory.replace(changed)
    before, after = await view(item), await view(changed)
    await record(log, who, "update", kind, item.id, before, after)
    return after


async def delete_level(directory: Any, log: Any, who: str, kind: Kind, item: Any, view: View) -> None:
    """Delete a stored level (its spend stays in every report)."""
    await directory.delete(kind, item.id)
    await record(log, who, "delete", kind, item.id, await view(item), None)


def member_view(member: Member) -> dict[str, object]:
    """A team member's budget inside the team, as JSON."""
    return {
        "user_id": member.user_id,
        "max_budget": money(member.max_budget),
        "budget_period": member.budget_period,
    }


async def put_member(directory: Any, log: Any, who: str, member: Member) -> bool:
    """Add a user to a team, or change their budget in it; whether they were not a member before."""
    before = await directory.member(member.team_id, member.user_id)
    await directory.put_member(member)
    action = "update" if before else "create"
    entity_id = f"{member.team_id}/{member.user_id}"
    await record(log, who, action, "member", entity_id, before and member_view(before), member_view(member))
    return before is None


async def remove_member(directory: Any, log: Any, who: str, team_id: str, user_id: str) -> bool:
    """Remove a user from a team; False when they were not a member."""
    before = await directory.member(team_id, user_id)
    if before is None or not await directory.delete_member(team_id, user_id):
        return False
    await record(log, who, "delete", "member", f"{team_id}/{user_id}", member_view(before), None)
    return True


def _nothing() -> None:
    pass


async def create_key(store: KeyStore, log: Any, who: str, key: VirtualKey, view: View) -> dict[str, object]:
    """Store a newly issued key; its view."""
    await store.create(key)
    after = await view(key)
    await record(log, who, "create", "key", key.id, None, after)
    return after


async def update_key(
    store: KeyStore,
    log: Any,
    who: str,
    before: VirtualKey,
    changes: KeyChanges,
    view: View,
    forget: Callable[[], None] = _nothing,
) -> tuple[VirtualKey, dict[str, object]] | None:
    """Change a stored key; the key and its view, or None when it is gone. `forget` runs as soon as
    the store has changed (the admin API drops its cached keys)."""
    key = await store.update(before.id, changes)
    if key is None:
        return None
    forget()
    after = await view(key)
    await record(log, who, "update", "key", key.id, await view(before), after)
    return key, after


async def revoke_key(
    store: KeyStore, log: Any, who: str, key: VirtualKey, view: View, forget: Callable[[], None] = _nothing
) -> bool:
    """Revoke a stored key; False when it is gone. `forget` as in `update_key`."""
    if not await store.revoke(key.id):
        return False
    forget()
    await record(log, who, "revoke", "key", key.id, await view(key), {"revoked": True})
    return True
