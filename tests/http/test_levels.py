"""Teams, users, members and customers through a real server: the admin API, budgets at every level
(the refusal names the level), and the audit log."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import orjson
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer
from tests.http.test_keys_budgets import ECHO, MASTER, auth, chat, new_key

# What three answers and one worst-case reservation of ECHO take (see test_keys_budgets).
WORST = (len(orjson.dumps(ECHO)) + 8 + 10) * Decimal("0.00005")
THREE = str(WORST + Decimal("0.0004") + Decimal("0.00001"))


@pytest.fixture
def secured(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER, "CALCIFER_CUSTOMER_BUDGET": THREE})


def admin(
    gateway: AsgiServer, method: str, path: str, body: object = None, key: str = MASTER
) -> httpx.Response:
    return httpx.request(method, gateway.url + path, json=body, headers=auth(key), timeout=10)


def test_a_team_budget_holds_across_its_keys_and_the_refusal_names_the_team(secured: AsgiServer) -> None:
    team = admin(
        secured, "POST", "/admin/teams", {"name": "search", "max_budget": THREE, "budget_period": "monthly"}
    )
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    keys = [str(new_key(secured, max_budget=1, team_id=team_id)["key"]) for _ in range(2)]
    statuses = [chat(secured, keys[n % 2]).status_code for n in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    refused = chat(secured, keys[0]).json()["error"]
    assert refused["code"] == "budget_exceeded" and f"team budget of '{team_id}'" in refused["message"]
    seen = admin(secured, "GET", f"/admin/teams/{team_id}").json()
    assert Decimal(str(seen["spend"])) == Decimal("0.0006") and seen["budget_window"].count("-") == 1


def test_a_member_budget_inside_a_team_and_a_user_across_keys(secured: AsgiServer) -> None:
    team_id = admin(secured, "POST", "/admin/teams", {"name": "infra"}).json()["id"]
    user = admin(secured, "POST", "/admin/users", {"id": "ada", "email": "ada@example.com"})
    assert user.status_code == 201 and user.json()["id"] == "ada"
    member = admin(secured, "PUT", f"/admin/teams/{team_id}/members/ada", {"max_budget": THREE})
    assert member.status_code == 201 and member.json()["user_id"] == "ada"
    keys = [str(new_key(secured, team_id=team_id, user_id="ada")["key"]) for _ in range(2)]
    statuses = [chat(secured, keys[n % 2]).status_code for n in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert "member budget" in chat(secured, keys[1]).json()["error"]["message"]
    members = admin(secured, "GET", f"/admin/teams/{team_id}").json()["members"]
    assert [m["user_id"] for m in members] == ["ada"]


def test_customers_have_the_default_budget_unless_overridden_or_blocked(secured: AsgiServer) -> None:
    def ask(customer: str) -> httpx.Response:
        headers = {**auth(MASTER), "x-calcifer-customer": customer, "content-type": "application/json"}
        return httpx.post(secured.url + "/v1/chat/completions", content=orjson.dumps(ECHO), headers=headers)

    assert [ask("acme").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert "customer budget of 'acme'" in ask("acme").json()["error"]["message"]
    override = admin(secured, "POST", "/admin/customers", {"id": "big", "max_budget": 10})
    assert override.status_code == 201
    assert [ask("big").status_code for _ in range(4)] == [200, 200, 200, 200]
    admin(secured, "POST", "/admin/customers", {"id": "blocked", "blocked": True})
    assert ask("blocked").json()["error"]["code"] == "customer_blocked"


def test_admin_changes_are_audited_and_the_audit_outlives_deletes(secured: AsgiServer) -> None:
    team_id = admin(secured, "POST", "/admin/teams", {"name": "audit-me", "max_budget": 5}).json()["id"]
    patched = admin(secured, "PATCH", f"/admin/teams/{team_id}", {"max_budget": 7})
    assert patched.status_code == 200 and patched.json()["max_budget"] == 7
    assert admin(secured, "DELETE", f"/admin/teams/{team_id}").status_code == 200
    assert admin(secured, "GET", f"/admin/teams/{team_id}").status_code == 404
    entries = admin(secured, "GET", f"/admin/audit?entity=team&entity_id={team_id}").json()["data"]
    assert [e["action"] for e in entries] == ["delete", "update", "create"]
    update = entries[1]
    assert (update["before"]["max_budget"], update["after"]["max_budget"]) == (5, 7)
    assert update["actor"] == "master" and entries[0]["after"] is None
    created = new_key(secured, role="admin")
    assert admin(secured, "GET", "/admin/teams", key=str(created["key"])).status_code == 200
    by_admin_key = admin(secured, "POST", "/admin/users", {"name": "bob"}, key=str(created["key"]))
    assert by_admin_key.status_code == 201
    newest = admin(secured, "GET", "/admin/audit?limit=1").json()["data"][0]
    assert newest["actor"] == f"key:{created['id']}" and newest["entity"] == "user"
    assert str(created["key"]) not in str(admin(secured, "GET", "/admin/audit").json())


def test_a_team_admin_manages_only_its_own_team(secured: AsgiServer) -> None:
    mine = admin(secured, "POST", "/admin/teams", {"name": "mine"}).json()["id"]
    other = admin(secured, "POST", "/admin/teams", {"name": "other"}).json()["id"]
    admin(secured, "POST", "/admin/users", {"id": "cy"})
    lead = str(new_key(secured, role="team-admin", team_id=mine)["key"])
    assert admin(secured, "PUT", f"/admin/teams/{mine}/members/cy", {}, key=lead).status_code == 201
    assert admin(secured, "PUT", f"/admin/teams/{other}/members/cy", {}, key=lead).status_code == 403
    assert admin(secured, "GET", "/admin/users", key=lead).status_code == 403
    assert admin(secured, "PATCH", f"/admin/teams/{mine}", {"max_budget": 9}, key=lead).status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "status", "param"),
    [
        ("/admin/teams", {}, 400, "name"),
        ("/admin/teams", {"name": "x", "budget_period": "hourly"}, 400, "budget_period"),
        ("/admin/teams", {"name": "x", "colour": 1}, 400, "colour"),
        ("/admin/customers", {"max_budget": 1}, 400, "id"),
        ("/admin/users", {"id": " padded "}, 400, "id"),
        ("/admin/users", {"max_budget": "lots"}, 400, "max_budget"),
    ],
)
def test_bad_admin_input_is_a_400_naming_the_field(
    secured: AsgiServer, path: str, body: object, status: int, param: str
) -> None:
    response = admin(secured, "POST", path, body)
    assert response.status_code == status and response.json()["error"]["param"] == param


def test_an_id_in_use_is_a_409(secured: AsgiServer) -> None:
    assert admin(secured, "POST", "/admin/users", {"id": "dup"}).status_code == 201
    assert admin(secured, "POST", "/admin/users", {"id": "dup"}).status_code == 409
    assert admin(secured, "DELETE", "/admin/users/nobody").status_code == 404
