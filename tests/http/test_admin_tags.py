"""Tag budgets through a real server: `/admin/tags` sets what requests with the tag are held to (the
refusal names the tag), changes are audited, bad input is a 400 and an unknown tag a 404."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import orjson
from tests.fakes.threaded import AsgiServer
from tests.http.test_keys_budgets import ECHO, MASTER, auth
from tests.http.test_levels import THREE, admin, secured

__all__ = ["secured"]


def tagged(gateway: AsgiServer, tags: str) -> httpx.Response:
    headers = {**auth(MASTER), "content-type": "application/json", "x-calcifer-tags": tags}
    return httpx.post(
        gateway.url + "/v1/chat/completions", content=orjson.dumps(ECHO), headers=headers, timeout=10
    )


def test_a_tag_budget_is_set_holds_and_is_removed(secured: AsgiServer) -> None:
    created = admin(
        secured, "PUT", "/admin/tags/search-beta", {"max_budget": THREE, "budget_period": "daily"}
    )
    assert created.status_code == 201, created.text
    view = orjson.loads(created.content)
    assert (view["tag"], view["budget_period"], Decimal(str(view["max_budget"]))) == (
        "search-beta",
        "daily",
        Decimal(THREE),
    )
    assert [tagged(secured, "search-beta").status_code for _ in range(4)] == [200, 200, 200, 429]
    refused = tagged(secured, "search-beta").json()["error"]
    assert "tag" in refused["message"] and "search-beta" in refused["message"]
    assert tagged(secured, "other").status_code == 200  # a tag without a budget is not held
    shown = admin(secured, "GET", "/admin/tags/search-beta").json()
    assert Decimal(str(shown["spend"])) > 0 and shown["budget_window"]
    raised = admin(secured, "PUT", "/admin/tags/search-beta", {"max_budget": "100"})
    assert raised.status_code == 200 and raised.json()["budget_period"] == "daily"  # the period is kept
    assert tagged(secured, "search-beta").status_code == 200
    assert [t["tag"] for t in admin(secured, "GET", "/admin/tags").json()["data"]] == ["search-beta"]
    assert admin(secured, "DELETE", "/admin/tags/search-beta").status_code == 200
    assert admin(secured, "GET", "/admin/tags").json()["data"] == []
    assert admin(secured, "DELETE", "/admin/tags/search-beta").status_code == 404
    assert admin(secured, "GET", "/admin/tags/search-beta").status_code == 404
    entries = admin(secured, "GET", "/admin/audit", None).json()["data"]
    assert [(e["action"], e["entity_id"]) for e in entries if e["entity"] == "tag"] == [
        ("delete", "search-beta"),
        ("update", "search-beta"),
        ("create", "search-beta"),
    ]
    assert {e["actor"] for e in entries if e["entity"] == "tag"} == {"master"}


def test_bad_tag_budgets_are_400s_naming_the_field(secured: AsgiServer) -> None:
    for body, param in (
        ({"max_budget": "lots"}, "max_budget"),
        ({"max_budget": -1}, "max_budget"),
        ({"max_budget": 9_000_001}, "max_budget"),
        ({}, "max_budget"),
        ({"max_budget": 1, "budget_period": "hourly"}, "budget_period"),
        ({"max_budget": 1, "colour": "red"}, "colour"),
    ):
        answer = admin(secured, "PUT", "/admin/tags/t", body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, answer.text
    assert admin(secured, "GET", "/admin/tags").json()["data"] == []
    assert httpx.get(secured.url + "/admin/tags", timeout=10).status_code == 401
