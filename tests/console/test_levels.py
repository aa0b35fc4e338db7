"""The teams, users, customers and audit pages over HTTP: what the levels' admin API holds, as text."""

from __future__ import annotations

import html
import re

import httpx2 as httpx

from tests.console.conftest import auth
from tests.fakes.threaded import AsgiServer

HOSTILE = '<script>alert(1)</script>"onerror=x'


def test_levels_and_audit_pages_show_what_the_admin_api_holds(
    secured: AsgiServer, browser: httpx.Client
) -> None:
    team = httpx.post(secured.url + "/admin/teams", json={"name": HOSTILE, "max_budget": 100}, headers=auth())
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    user = httpx.post(secured.url + "/admin/users", json={"id": "ana", "name": "Ana"}, headers=auth())
    assert user.status_code == 201, user.text
    assert httpx.put(
        secured.url + f"/admin/teams/{team_id}/members/ana", json={"max_budget": 40}, headers=auth()
    ).status_code in (200, 201)
    customer = httpx.post(
        secured.url + "/admin/customers", json={"id": "acme", "max_budget": 1}, headers=auth()
    )
    assert customer.status_code == 201, customer.text
    teams = browser.get("/ui/teams")
    assert teams.status_code == 200 and team_id in teams.text and "$100" in teams.text
    assert "<script>alert(1)" not in teams.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in teams.text
    page = browser.get(f"/ui/teams/{team_id}")
    assert page.status_code == 200 and 'href="/ui/users/ana"' in page.text and "$40" in page.text
    assert "Ana" in browser.get("/ui/users").text and "acme" in browser.get("/ui/customers").text
    assert browser.get("/ui/users/ana").status_code == 200
    assert browser.get("/ui/customers/nobody").status_code == 404
    audit = browser.get("/ui/audit")
    assert audit.status_code == 200 and "create" in audit.text and team_id in audit.text
    assert "<script>alert(1)" not in audit.text
    only = browser.get("/ui/audit", params={"entity": "customer"})
    assert "acme" in only.text and team_id not in only.text
    assert browser.get("/ui/audit", params={"before": "x"}).status_code == 400


def test_the_audit_pages_older_link_keeps_the_filters(secured: AsgiServer, browser: httpx.Client) -> None:
    customer = "acme & co"  # an id that must be escaped in a link
    created = httpx.post(secured.url + "/admin/customers", json={"id": customer}, headers=auth())
    assert created.status_code == 201, created.text
    team = httpx.post(secured.url + "/admin/teams", json={"name": "team-not-acme"}, headers=auth())
    assert team.status_code == 201
    for n in range(100):
        changed = httpx.patch(
            secured.url + f"/admin/customers/{customer}", json={"max_budget": n + 1}, headers=auth()
        )
        assert changed.status_code == 200, changed.text
    page = browser.get("/ui/audit", params={"entity": "customer", "entity_id": customer}).text
    older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', page)
    assert older is not None
    link = html.unescape(older.group(1))
    assert link.startswith("/ui/audit?entity=customer&entity_id=acme+%26+co&before=")
    rest = browser.get(link)
    assert rest.status_code == 200 and ">create<" in rest.text and "team-not-acme" not in rest.text
