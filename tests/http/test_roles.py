"""Admin and team-admin keys through a real gateway: a team-admin key manages its team's keys and
members only, reads its team's requests and spend, cannot escalate; every change is audited with the
admin key's id as the actor, never its secret."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer
from tests.http.test_keys_budgets import MASTER, auth, chat, new_key
from tests.http.test_request_log import eventually


@pytest.fixture
def gateway(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})


def call(gateway: AsgiServer, key: str, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(method, gateway.url + path, json=body, headers=auth(key), timeout=10)


def refused(response: httpx.Response, status: int, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param


def teams(gateway: AsgiServer) -> tuple[str, str, dict[str, Any]]:
    mine, other = (call(gateway, MASTER, "POST", "/admin/teams", {"name": n}).json()["id"] for n in "ab")
    return mine, other, new_key(gateway, name="lead", role="team-admin", team_id=mine)


def test_a_team_admin_manages_its_team_s_keys_and_cannot_escalate(gateway: AsgiServer) -> None:
    mine, other, lead = teams(gateway)
    secret = str(lead["key"])
    outsider = new_key(gateway, name="outsider", team_id=other)
    made = call(gateway, secret, "POST", "/admin/keys", {"name": "dev", "max_budget": 1})
    assert made.status_code == 201 and made.json()["team_id"] == mine and made.json()["role"] is None
    dev = made.json()["id"]
    for body, param in (
        ({"name": "x", "team_id": other}, "team_id"),
        ({"name": "x", "role": "team-admin"}, "role"),
        ({"name": "x", "role": "admin"}, "role"),
        ({"name": "x", "metadata": {"team": other}}, "metadata"),
    ):
        refused(call(gateway, secret, "POST", "/admin/keys", body), 403, param)
    call(gateway, MASTER, "POST", "/admin/users", {"id": "cy"})
    refused(call(gateway, secret, "POST", "/admin/keys", {"name": "x", "user_id": "cy"}), 403, "user_id")
    refused(call(gateway, secret, "PATCH", f"/admin/keys/{dev}", {"user_id": "cy"}), 403, "user_id")
    assert call(gateway, secret, "PUT", f"/admin/teams/{mine}/members/cy", {}).status_code == 201
    assert call(gateway, secret, "PATCH", f"/admin/keys/{dev}", {"user_id": "cy"}).json()["user_id"] == "cy"
    listed = call(gateway, secret, "GET", "/admin/keys").json()["data"]
    assert {k["id"] for k in listed} == {lead["id"], dev}
    for method in ("GET", "PATCH", "DELETE"):
        refused(call(gateway, secret, method, f"/admin/keys/{outsider['id']}", {}), 404)
    assert call(gateway, secret, "PATCH", f"/admin/keys/{dev}", {"max_budget": 2}).json()["max_budget"] == 2
    refused(call(gateway, secret, "PATCH", f"/admin/keys/{dev}", {"role": "admin"}), 403, "role")
    refused(call(gateway, secret, "PATCH", f"/admin/keys/{dev}", {"team_id": other}), 403, "team_id")
    refused(call(gateway, secret, "PATCH", f"/admin/keys/{lead['id']}", {"max_budget": 99}), 403, "key_id")
    refused(call(gateway, secret, "PATCH", f"/admin/teams/{mine}", {"max_budget": 1000}), 403)
    refused(call(gateway, secret, "DELETE", f"/admin/teams/{mine}"), 403)
    for path in ("/admin/users", "/admin/customers", "/admin/audit", f"/admin/teams/{other}"):
        refused(call(gateway, secret, "GET", path), 403)
    assert [t["id"] for t in call(gateway, secret, "GET", "/admin/teams").json()["data"]] == [mine]
    assert call(gateway, secret, "DELETE", f"/admin/keys/{dev}").status_code == 200
    assert call(gateway, MASTER, "GET", f"/admin/keys/{dev}").json()["revoked"] is True
    trail = call(gateway, MASTER, "GET", f"/admin/audit?entity=key&entity_id={dev}").json()["data"]
    assert [e["action"] for e in trail] == ["revoke", "update", "update", "create"]
    assert {e["actor"] for e in trail} == {f"key:{lead['id']}"} and secret not in str(trail)


def test_a_team_admin_reads_its_team_s_requests_and_spend_and_an_admin_key_all(gateway: AsgiServer) -> None:
    mine, other, lead = teams(gateway)
    secret = str(lead["key"])
    keys = {team: new_key(gateway, name=team, team_id=team) for team in (mine, other)}
    for key in keys.values():
        assert chat(gateway, str(key["key"])).status_code == 200
    everything = eventually(
        lambda: (
            (rows := call(gateway, MASTER, "GET", "/admin/requests").json()["data"])
            and len(rows) == 2
            and rows
        )
    )
    theirs = next(r for r in everything if r["team"] == other)
    own = call(gateway, secret, "GET", "/admin/requests").json()["data"]
    assert [r["team"] for r in own] == [mine]
    refused(call(gateway, secret, "GET", f"/admin/requests/{theirs['id']}"), 404, "request_id")
    refused(call(gateway, secret, "GET", f"/admin/requests?team={other}"), 403, "team")
    spend = call(gateway, secret, "GET", "/v1/spend?group_by=team").json()["data"]
    assert [g["team"] for g in spend] == [mine]
    refused(call(gateway, secret, "GET", f"/v1/spend?team={other}"), 403, "team")
    boss = str(new_key(gateway, name="boss", role="admin")["key"])
    by_team = call(gateway, boss, "GET", "/v1/spend?group_by=team").json()["data"]
    assert sorted(g["team"] for g in by_team) == sorted((mine, other))
    member = str(keys[mine]["key"])
    assert [g["key"] for g in call(gateway, member, "GET", "/v1/spend?group_by=key").json()["data"]] == [
        keys[mine]["id"]
    ]
    refused(call(gateway, member, "GET", "/admin/keys"), 403)
