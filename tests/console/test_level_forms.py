"""The teams, users and customers forms over HTTP: each change is the admin API's (same validation,
same audit entry, as the session's actor), CSRF-protected, with labelled fields and hostile names
rendered as text."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from typing import Any

import httpx2 as httpx

from tests.console.conftest import auth, csrf_of
from tests.fakes.threaded import AsgiServer

HOSTILE = '<script>alert(1)</script>"onerror=x'


def api(gateway: AsgiServer, path: str) -> httpx.Response:
    return httpx.get(gateway.url + path, headers=auth(), timeout=10)


def alert(page: str) -> str:
    """The error the page shows (the API's message)."""
    found = re.search(r'role="alert">([^<]*)<', page)
    assert found is not None, "the page shows no error"
    return html.unescape(found.group(1))


def exact(answer: httpx.Response) -> Any:
    return json.loads(answer.content, parse_float=Decimal)


def test_a_team_is_created_edited_given_members_and_deleted_through_its_forms(
    secured: AsgiServer, browser: httpx.Client
) -> None:
    listing = browser.get("/ui/teams").text
    token = csrf_of(listing)
    created = browser.post(
        "/ui/teams",
        data={
            "csrf": token, "id": "search", "name": HOSTILE, "max_budget": "100.000000000001",
            "budget_period": "weekly", "models": "echo4, gpt-4o", "rpm_limit": "60", "tpm_limit": "",
            "metadata": '{"cost_centre": 7}',
        },
    )  # fmt: skip
    assert created.status_code == 303 and created.headers["location"] == "/ui/teams/search?saved=1"
    team = exact(api(secured, "/admin/teams/search"))
    assert (team["name"], team["max_budget"], team["budget_period"]) == (
        HOSTILE,
        Decimal("100.000000000001"),
        "weekly",
    )
    assert (team["models"], team["rpm_limit"], team["tpm_limit"], team["metadata"]) == (
        ["echo4", "gpt-4o"],
        60,
        None,
        {"cost_centre": 7},
    )
    page = browser.get(created.headers["location"]).text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Saved." in page
    for field in re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page):
        assert f'<label for="{field}">' in page, field  # every field has its label
    refused = browser.post("/ui/teams/search", data={"csrf": token, "name": "x", "rpm_limit": "²"})
    assert refused.status_code == 400 and "'rpm_limit'" in alert(refused.text)
    edited = browser.post(
        "/ui/teams/search",
        data={"csrf": token, "name": "Search", "max_budget": "", "budget_period": "monthly", "models": ""},
    )
    assert edited.status_code == 303
    team = exact(api(secured, "/admin/teams/search"))
    assert (team["name"], team["max_budget"], team["models"], team["rpm_limit"]) == ("Search", None, [], None)

    user = httpx.post(secured.url + "/admin/users", json={"id": "ana"}, headers=auth(), timeout=10)
    assert user.status_code == 201
    added = browser.post(
        "/ui/teams/search/members",
        data={"csrf": token, "user_id": "ana", "max_budget": "40", "budget_period": "daily"},
    )
    assert added.status_code == 303
    members = exact(api(secured, "/admin/teams/search"))["members"]
    assert members == [{"user_id": "ana", "max_budget": 40, "budget_period": "daily"}]
    assert (
        browser.post("/ui/teams/search/members", data={"csrf": token, "user_id": "nobody"}).status_code == 404
    )
    removed = browser.post("/ui/teams/search/members/ana/remove", data={"csrf": token})
    assert removed.status_code == 303 and exact(api(secured, "/admin/teams/search"))["members"] == []
    joined = browser.post("/ui/users/ana/teams", data={"csrf": token, "team_id": "search", "max_budget": ""})
    assert joined.status_code == 303 and joined.headers["location"] == "/ui/users/ana?saved=1"
    assert exact(api(secured, "/admin/teams/search"))["members"][0]["user_id"] == "ana"

    assert browser.post("/ui/teams/search/delete", data={}).status_code == 403  # no CSRF token
    deleted = browser.post("/ui/teams/search/delete", data={"csrf": token})
    assert deleted.status_code == 303 and api(secured, "/admin/teams/search").status_code == 404
    audit = exact(api(secured, "/admin/audit?entity=team&entity_id=search"))["data"]
    assert [e["action"] for e in audit] == ["delete", "update", "create"]
    assert {e["actor"] for e in audit} == {"master"}  # the session's identity, as the API saw it


def test_users_and_customers_forms_and_their_refusals(secured: AsgiServer, browser: httpx.Client) -> None:
    token = csrf_of(browser.get("/ui/customers").text)
    missing = browser.post("/ui/customers", data={"csrf": token, "id": "", "max_budget": "1"})
    assert missing.status_code == 400 and "'id'" in alert(missing.text)
    too_much = browser.post("/ui/customers", data={"csrf": token, "id": "acme", "max_budget": "9000001"})
    assert too_much.status_code == 400 and "'max_budget'" in alert(too_much.text)
    bad_meta = browser.post("/ui/customers", data={"csrf": token, "id": "acme", "metadata": "[1"})
    assert bad_meta.status_code == 400 and "'metadata'" in alert(bad_meta.text)
    created = browser.post(
        "/ui/customers",
        data={"csrf": token, "id": "acme", "max_budget": "0.5", "budget_period": "daily", "blocked": "on"},
    )
    assert created.status_code == 303
    customer = exact(api(secured, "/admin/customers/acme"))
    assert (customer["max_budget"], customer["budget_period"], customer["blocked"]) == (
        Decimal("0.5"),
        "daily",
        True,
    )
    unblocked = browser.post("/ui/customers/acme", data={"csrf": token, "max_budget": "0.5"})
    assert unblocked.status_code == 303 and exact(api(secured, "/admin/customers/acme"))["blocked"] is False
    user = browser.post(
        "/ui/users", data={"csrf": token, "name": HOSTILE, "email": "ana@example.com", "max_budget": "2"}
    )
    assert user.status_code == 303
    user_id = user.headers["location"].split("/")[-1].split("?")[0]
    shown = exact(api(secured, f"/admin/users/{user_id}"))
    assert (shown["name"], shown["email"], shown["max_budget"]) == (HOSTILE, "ana@example.com", 2)
    page = browser.get(f"/ui/users/{user_id}").text
    assert "<script>alert(1)" not in page
    assert browser.post("/ui/users/nobody/delete", data={"csrf": token}).status_code == 404
