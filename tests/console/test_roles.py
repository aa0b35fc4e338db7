"""The console signed in with an admin or a team-admin key: a team-admin sees and changes only its
team (other teams' pages and data are 403/404, forms cannot reach another team or give a role), an
admin key sees everything, an ordinary key cannot sign in, and revoking or demoting a key ends its
sessions. Changes are audited with the admin key's id as the actor."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import httpx2 as httpx

from tests.console.conftest import MASTER, auth, csrf_of, log_in
from tests.fakes.threaded import AsgiServer
from tests.http.test_keys_budgets import ECHO
from tests.http.test_request_log import eventually


def api(gateway: AsgiServer, method: str, path: str, body: object = None) -> Any:
    answer = httpx.request(method, gateway.url + path, json=body, headers=auth(), timeout=10)
    assert answer.status_code < 300, answer.text
    return answer.json()


def key_form(csrf: str, name: str, **fields: str) -> dict[str, str]:
    return {"csrf": csrf, "name": name, "budget_period": "total", **fields}


def setup(gateway: AsgiServer) -> dict[str, Any]:
    """Teams red and blue, a key with a request in each, and red's team-admin key."""
    red, blue = (api(gateway, "POST", "/admin/teams", {"id": t, "name": t})["id"] for t in ("red", "blue"))
    world: dict[str, Any] = {
        "lead": api(gateway, "POST", "/admin/keys", {"name": "lead", "role": "team-admin", "team_id": red})
    }
    for team in (red, blue):
        key = api(gateway, "POST", "/admin/keys", {"name": f"{team}-app-key", "team_id": team})
        headers = {**auth(key["key"]), "x-request-id": f"req-{team}-1"}
        sent = httpx.post(gateway.url + "/v1/chat/completions", json=ECHO, headers=headers, timeout=10)
        assert sent.status_code == 200
        world[team] = key
    eventually(lambda: len(api(gateway, "GET", "/admin/requests")["data"]) == 2)
    return world


def test_a_team_admin_sees_only_its_team(secured: AsgiServer) -> None:
    world = setup(secured)
    blue = world["blue"]
    with closing(log_in(secured, world["lead"]["key"])) as lead:
        for path in (
            "/ui",
            "/ui/keys",
            "/ui/requests",
            "/ui/spend?group_by=key",
            "/ui/spend?group_by=team",
            "/ui/teams",
        ):
            page = lead.get(path)
            assert page.status_code == 200, path
            assert "blue" not in page.text and blue["id"] not in page.text, path
        assert "red-app-key" in lead.get("/ui/keys").text and "req-red-1" in lead.get("/ui/requests").text
        assert "team-admin key" in lead.get("/ui").text
        for path, status in (
            (f"/ui/keys/{blue['id']}", 404),
            ("/ui/requests/req-blue-1", 404),
            ("/ui/teams/blue", 403),
            ("/ui/users", 403),
            ("/ui/customers", 403),
            ("/ui/audit", 403),
            ("/ui/models", 403),
            ("/ui/spend?team=blue", 403),
            (f"/ui/spend.csv?key_id={blue['id']}&group_by=key", 200),  # nothing of it: the team is forced
            ("/ui/requests?team=blue", 403),
        ):
            page = lead.get(path)
            assert page.status_code == status and "blue-app-key" not in page.text, path
        assert blue["id"] not in lead.get(f"/ui/spend.csv?key_id={blue['id']}&group_by=key").text
        for path in ("/ui", "/ui/teams/red"):  # the pages offer only what it may open
            assert "/ui/audit" not in lead.get(path).text and "/ui/users" not in lead.get(path).text


def test_a_team_admin_s_forms_stay_in_its_team(secured: AsgiServer) -> None:
    world = setup(secured)
    blue, lead_id = world["blue"], world["lead"]["id"]
    with closing(log_in(secured, world["lead"]["key"])) as lead:
        csrf = csrf_of(lead.get("/ui/keys").text)
        assert lead.post("/ui/keys", data=key_form(csrf, "sneaky", team="blue")).status_code == 403
        made = lead.post("/ui/keys", data=key_form(csrf, "dev", team="", role="admin", team_id="blue"))
        assert made.status_code == 200 and "sk-calc-" in made.text
        created = next(k for k in api(secured, "GET", "/admin/keys")["data"] if k["name"] == "dev")
        assert (created["team_id"], created["role"]) == ("red", None)  # tampered fields are not passed on
        edit = key_form(csrf, "mine-now", team="red", max_budget="1000")
        assert lead.post(f"/ui/keys/{blue['id']}", data=edit).status_code == 404
        assert lead.post(f"/ui/keys/{blue['id']}/revoke", data={"csrf": csrf}).status_code == 404
        assert lead.post(f"/ui/keys/{lead_id}", data=edit).status_code == 403  # its own key has a role
        after = api(secured, "GET", f"/admin/keys/{blue['id']}")
        assert (after["name"], after["revoked"], after["max_budget"]) == ("blue-app-key", False, None)
        assert lead.post(f"/ui/keys/{created['id']}/revoke", data={"csrf": csrf}).status_code == 303
    trail = api(secured, "GET", f"/admin/audit?entity=key&entity_id={created['id']}")["data"]
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("revoke", f"key:{lead_id}"),
        ("create", f"key:{lead_id}"),
    ]
    assert world["lead"]["key"] not in str(trail)


def test_an_admin_key_sees_everything_until_it_is_revoked(secured: AsgiServer) -> None:
    world = setup(secured)
    boss = api(secured, "POST", "/admin/keys", {"name": "boss", "role": "admin"})
    with closing(log_in(secured, boss["key"])) as admin:
        keys = admin.get("/ui/keys").text
        assert "red-app-key" in keys and "blue-app-key" in keys
        assert admin.get("/ui/users").status_code == 200 and admin.get("/ui/teams/blue").status_code == 200
        assert "admin key" in admin.get("/ui").text
        api(secured, "DELETE", f"/admin/keys/{boss['id']}")
        assert admin.get("/ui").status_code == 303  # its sessions end with it
    with closing(log_in(secured, world["lead"]["key"])) as lead:
        api(secured, "PATCH", f"/admin/keys/{world['lead']['id']}", {"role": None})
        assert lead.get("/ui/keys").status_code == 303  # no role any more: no console
    plain = httpx.post(secured.url + "/ui/login", data={"key": world["red"]["key"]})
    assert plain.status_code == 403 and "set-cookie" not in plain.headers
    assert httpx.post(secured.url + "/ui/login", data={"key": world["lead"]["key"]}).status_code == 403
    assert MASTER not in plain.text
