"""Who may see which spend and manage which keys.

Callers are the master key (`None` here: no key), `admin` keys, `team-admin` keys and ordinary keys.

Spend (`GET /v1/spend`): every caller has a widest *scope* it may read, and may narrow to any scope it
holds with `scope=`:
- `all`: the master key and `admin` keys (the default for them);
- `team`: its team's spend, every key of the team (the default for a `team-admin` key; an ordinary key
  of a team may ask for it too, but only as totals: no grouping or filtering by key, user or customer,
  which are its colleagues' business, not its own);
- `user`: the spend of its user across all of that user's keys (a key that belongs to a user);
- `customer`: a key bound to one end customer (`"customer"` in its metadata, set by whoever created the
  key) reads that customer's spend, as totals;
- `key`: its own key's spend (the default for an ordinary key).
A key never sees more than whoever could have created it: the `user` and `customer` views of a key
that belongs to a team stay inside that team (else a team-admin could mint a key naming any user or
customer and read their spend in other teams); keys without a team are made by admins.
A scope's dimensions are forced into the report's filters; a filter that contradicts one is refused
(403), never silently widened or emptied.

Keys (`/admin/keys`): the master key and `admin` keys manage every key. A `team-admin` key sees its
team's keys (other teams' keys do not exist for it: 404) and manages those without a role: a key it
creates is forced into its team, and it can never give a key a role (no escalation, not even to
`team-admin`), move a key to another team, or touch a key with a role (its own included: the budget
of an admin key is the business of a higher admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from calcifer.domain.errors import GatewayError, InvalidRequest
from calcifer.domain.keys import VirtualKey

SCOPES: Final = ("all", "team", "user", "customer", "key")
_PRIVATE: Final = ("key", "user", "customer")  # what a member's team view may not break down by
_PARAMS: Final = {"key": "key_id", "team": "team", "user": "user", "customer": "customer"}


class NotPermitted(GatewayError):
    kind = "permission_error"
    code = "forbidden"
    http_status = 403


def managed_team(caller: VirtualKey | None) -> str | None:
    """The team an admin caller is confined to: None for the master key and `admin` keys."""
    if caller is not None and caller.role == "team-admin":
        return caller.team_id
    return None


def spend_scope(
    caller: VirtualKey | None,
    asked_scope: str | None,
    filters: Mapping[str, str],
    group_by: tuple[str, ...],
) -> dict[str, str]:
    """The filters a spend report runs with: `filters` (dimension -> value: key, team, user, customer,
    tag) plus what the caller's scope forces. `NotPermitted` when a filter or grouping leaves the scope,
    `InvalidRequest` for an unknown scope."""
    scope = asked_scope or _widest(caller)
    if scope not in SCOPES:
        raise InvalidRequest(f"'scope' must be one of {', '.join(SCOPES)}.", param="scope")
    forced = _forced(caller, scope)
    for dimension, value in forced.items():
        if filters.get(dimension, value) != value:
            raise NotPermitted(
                f"This key may not read spend outside its {scope} ('{dimension}' is fixed).",
                param=_PARAMS[dimension],
            )
    if caller is not None and caller.role is None and scope in ("team", "customer"):
        for dimension in _PRIVATE:
            if dimension in group_by or (dimension in filters and dimension not in forced):
                raise NotPermitted(
                    f"A key's {scope} view is totals only: it may not break spend down by {dimension}.",
                    param="group_by" if dimension in group_by else _PARAMS[dimension],
                )
    return {**filters, **forced}


def _widest(caller: VirtualKey | None) -> str:
    if caller is None or caller.role == "admin":
        return "all"
    return "team" if caller.role == "team-admin" else "key"


def _forced(caller: VirtualKey | None, scope: str) -> dict[str, str]:
    if scope == "all":
        if caller is not None and caller.role != "admin":
            raise NotPermitted("Only the master key and admin keys may read all spend.", param="scope")
        return {}
    if caller is None:
        raise InvalidRequest(f"The master key has no {scope} of its own: leave 'scope' out.", param="scope")
    if scope == "key":
        return {"key": caller.id}
    if scope == "customer":
        customer = caller.metadata.get("customer")
        if not isinstance(customer, str) or not customer:
            raise NotPermitted("This key is not bound to a customer.", param="scope")
        return {"customer": customer, **_team_of(caller)}
    if scope == "team":
        if caller.team_id is None:
            raise NotPermitted("This key belongs to no team.", param="scope")
        return {"team": caller.team_id}
    if caller.user_id is None:
        raise NotPermitted("This key belongs to no user.", param="scope")
    return {"user": caller.user_id, **_team_of(caller)}


def _team_of(caller: VirtualKey) -> dict[str, str]:
    return {} if caller.team_id is None else {"team": caller.team_id}


def check_new_key(team: str | None, fields: Mapping[str, object]) -> dict[str, object]:
    """The fields of a key a caller confined to `team` creates: forced into the team; `NotPermitted`
    for another team or any role."""
    if team is None:
        return dict(fields)
    check_key_changes(team, fields)
    return {**fields, "team_id": team}


def check_key_changes(team: str | None, fields: Mapping[str, object]) -> None:
    """`NotPermitted` when a caller confined to `team` sets a role or another team."""
    if team is None:
        return
    if fields.get("role") is not None:
        raise NotPermitted("A team-admin key cannot give a key a role.", param="role")
    if "team_id" in fields and fields["team_id"] != team:
        raise NotPermitted(f"A team-admin key manages only keys of team '{team}'.", param="team_id")
    metadata = fields.get("metadata")
    if isinstance(metadata, Mapping) and metadata.get("team", team) != team:
        raise NotPermitted(f"A team-admin key manages only keys of team '{team}'.", param="metadata")


def may_see_key(team: str | None, key: VirtualKey) -> bool:
    """Whether a caller confined to `team` (None: not confined) may see `key`: a key of its team."""
    return team is None or key.team_id == team


def may_manage_key(team: str | None, key: VirtualKey) -> bool:
    """Whether a caller confined to `team` may change or revoke `key`: a key of its team without a role."""
    return team is None or (key.team_id == team and key.role is None)
