"""Who sees which spend and manages which keys: scopes forced into a report's filters, and a team-admin
key confined to the role-less keys of its team."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.keys import VirtualKey
from calcifer.domain.roles import (
    NotPermitted,
    check_key_changes,
    check_new_key,
    managed_team,
    may_manage_key,
    may_see_key,
    spend_scope,
)


def key(key_id: str = "k", **fields: Any) -> VirtualKey:
    return VirtualKey(id=key_id, name=key_id, secret_hash="0" * 64, created_at=datetime.now(UTC), **fields)


ADMIN = key("a", role="admin")
LEAD = key("l", role="team-admin", team_id="red")
MEMBER = key("m", team_id="red", user_id="ada", metadata={"customer": "acme"})


def test_the_widest_scope_is_the_default_and_forced_into_the_filters() -> None:
    assert spend_scope(None, None, {"team": "blue"}, ("model",)) == {"team": "blue"}
    assert spend_scope(ADMIN, None, {}, ("key",)) == {}
    assert spend_scope(LEAD, None, {"user": "ada"}, ("key", "user")) == {"team": "red", "user": "ada"}
    assert spend_scope(MEMBER, None, {"team": "red"}, ("user",)) == {"key": "m", "team": "red"}
    assert spend_scope(MEMBER, "user", {}, ("key",)) == {"user": "ada", "team": "red"}
    assert spend_scope(key(user_id="ada"), "user", {}, ("key",)) == {"user": "ada"}
    assert spend_scope(MEMBER, "team", {"tag": "x"}, ("model", "day")) == {"team": "red", "tag": "x"}
    assert spend_scope(MEMBER, "customer", {}, ("day",)) == {"customer": "acme", "team": "red"}
    assert spend_scope(key(metadata={"customer": "acme"}), "customer", {}, ()) == {"customer": "acme"}
    assert spend_scope(ADMIN, "key", {}, ()) == {"key": "a"}


@pytest.mark.parametrize(
    ("caller", "scope", "filters", "group_by", "param"),
    [
        (LEAD, None, {"team": "blue"}, (), "team"),
        (LEAD, "all", {}, (), "scope"),
        (MEMBER, None, {"key": "other"}, (), "key_id"),
        (MEMBER, "user", {"user": "bob"}, (), "user"),
        (MEMBER, "team", {}, ("model", "key"), "group_by"),
        (MEMBER, "team", {"customer": "acme"}, (), "customer"),
        (MEMBER, "customer", {}, ("user",), "group_by"),
        (key(), "team", {}, (), "scope"),
        (key(), "user", {}, (), "scope"),
        (key(metadata={"customer": 7}), "customer", {}, (), "scope"),
    ],
)
def test_leaving_the_scope_is_not_permitted(
    caller: VirtualKey, scope: str | None, filters: dict[str, str], group_by: tuple[str, ...], param: str
) -> None:
    with pytest.raises(NotPermitted) as refused:
        spend_scope(caller, scope, filters, group_by)
    assert refused.value.param == param and refused.value.http_status == 403


def test_an_unknown_scope_or_the_master_key_s_own_is_a_400() -> None:
    for caller, scope in ((MEMBER, "everyone"), (None, "team")):
        with pytest.raises(InvalidRequest) as refused:
            spend_scope(caller, scope, {}, ())
        assert refused.value.param == "scope"


def test_a_team_admin_creates_keys_only_in_its_team_and_without_a_role() -> None:
    assert managed_team(LEAD) == "red" and managed_team(ADMIN) is None and managed_team(None) is None
    assert check_new_key("red", {"name": "x"}) == {"name": "x", "team_id": "red"}
    assert check_new_key(None, {"name": "x", "role": "admin"}) == {"name": "x", "role": "admin"}
    assert (
        check_new_key("red", {"name": "x", "team_id": "red", "metadata": {"team": "red"}})["team_id"] == "red"
    )
    for fields, param in (
        ({"role": "team-admin"}, "role"),
        ({"role": "admin"}, "role"),
        ({"team_id": "blue"}, "team_id"),
        ({"team_id": None}, "team_id"),
        ({"metadata": {"team": "blue"}}, "metadata"),
    ):
        with pytest.raises(NotPermitted) as refused:
            check_new_key("red", {"name": "x", **fields})
        assert refused.value.param == param
    check_key_changes(None, {"team_id": "blue", "role": "admin"})
    check_key_changes("red", {"role": None, "max_budget": 1})


def test_a_team_admin_sees_its_team_s_keys_and_manages_those_without_a_role() -> None:
    for other in (key(team_id="blue"), key()):
        assert not may_see_key("red", other) and not may_manage_key("red", other)
    assert may_see_key("red", LEAD) and not may_manage_key("red", LEAD)
    assert may_see_key("red", MEMBER) and may_manage_key("red", MEMBER)
    assert may_see_key(None, key(team_id="blue")) and may_manage_key(None, LEAD)
