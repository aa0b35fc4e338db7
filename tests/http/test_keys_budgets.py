"""Virtual keys, the admin API, hard budgets, rate limits and the spend API, through a real server."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx2 as httpx
import orjson
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer
from tests.http.openapi import errors

MASTER = "mk-test-0123456789abcdefghijklmnop"
ECHO = {"model": "echo4", "max_tokens": 10, "messages": [{"role": "user", "content": "Test message"}]}


@pytest.fixture
def secured(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(gateway: AsgiServer, **fields: object) -> dict[str, object]:
    response = httpx.post(
        gateway.url + "/admin/keys", json={"name": "team-a", **fields}, headers=auth(MASTER)
    )
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def chat(gateway: AsgiServer, key: str, body: object = ECHO) -> httpx.Response:
    content = orjson.dumps(body)
    headers = {**auth(key), "content-type": "application/json"}
    return httpx.post(gateway.url + "/v1/chat/completions", content=content, headers=headers, timeout=10)


def test_keys_are_required_once_a_master_key_is_set(secured: AsgiServer) -> None:
    missing = httpx.post(secured.url + "/v1/chat/completions", json=ECHO)
    assert missing.status_code == 401 and errors("ErrorResponse", missing.json()) == []
    wrong = chat(secured, "sk-calc-not-a-real-key")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert chat(secured, MASTER).status_code == 200
    via_header = httpx.post(secured.url + "/v1/chat/completions", json=ECHO, headers={"x-api-key": MASTER})
    assert via_header.status_code == 200
    assert httpx.get(secured.url + "/health").status_code == 200
    assert httpx.get(secured.url + "/v1/models").status_code == 401


def test_admin_creates_lists_updates_and_revokes_keys(secured: AsgiServer) -> None:
    created = new_key(
        secured,
        max_budget=5,
        budget_period="daily",
        models=["echo4"],
        rpm_limit=100,
        metadata={"team": "search"},
    )
    secret = str(created["key"])
    assert (
        secret.startswith("sk-calc-") and created["max_budget"] == 5 and created["budget_period"] == "daily"
    )
    assert chat(secured, secret).status_code == 200
    listed = httpx.get(secured.url + "/admin/keys", headers=auth(MASTER)).json()["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert secret not in str(listed) and "secret" not in str(listed)
    assert Decimal(str(listed[0]["spend"])) == Decimal("0.0002")
    assert httpx.get(secured.url + "/admin/keys", headers=auth(secret)).status_code == 403
    patched = httpx.patch(
        secured.url + f"/admin/keys/{created['id']}", json={"rpm_limit": 7}, headers=auth(MASTER)
    )
    assert patched.status_code == 200 and patched.json()["rpm_limit"] == 7
    assert httpx.delete(secured.url + f"/admin/keys/{created['id']}", headers=auth(MASTER)).status_code == 200
    assert chat(secured, secret).status_code == 401
    assert httpx.delete(secured.url + "/admin/keys/key_nope", headers=auth(MASTER)).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": "x", "max_budget": "lots"}, "max_budget"),
        ({"name": "x", "rpm_limit": 0}, "rpm_limit"),
        ({"name": "x", "budget_period": "hourly"}, "budget_period"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)
def test_admin_rejects_bad_keys(secured: AsgiServer, body: dict[str, object], param: str) -> None:
    response = httpx.post(secured.url + "/admin/keys", json=body, headers=auth(MASTER))
    assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_a_key_may_only_use_its_models(secured: AsgiServer) -> None:
    secret = str(new_key(secured, models=["gpt-4o"])["key"])
    refused = chat(secured, secret)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"


def test_budget_refuses_what_cannot_fit_and_is_never_overspent(secured: AsgiServer) -> None:
    # Without a tokenizer the prompt is bounded by its body size (a token is at least one byte) plus 8
    # framing tokens per message; the worst case adds max_tokens of output. echo4: $0.05 per 1K tokens.
    worst = (len(orjson.dumps(ECHO)) + 8 + 10) * Decimal("0.00005")
    created = new_key(secured, max_budget=str(worst + Decimal("0.0004") + Decimal("0.00001")))
    secret = str(created["key"])
    answers = [chat(secured, secret) for _ in range(6)]
    statuses = [a.status_code for a in answers]
    # Each answer really costs $0.0002: three fit beside one worst-case reservation, the fourth does not.
    assert statuses == [200, 200, 200, 429, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    error = refused.json()["error"]
    assert error["type"] == "budget_exceeded" and "remains" in error["message"] and "$" in error["message"]
    spent = Decimal(
        str(httpx.get(secured.url + f"/admin/keys/{created['id']}", headers=auth(MASTER)).json()["spend"])
    )
    assert spent == Decimal("0.0002") * statuses.count(200)
    assert spent <= Decimal(str(created["max_budget"]))


def test_rate_limit_answers_429_with_headers(secured: AsgiServer) -> None:
    secret = str(new_key(secured, rpm_limit=2)["key"])
    first = chat(secured, secret)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert chat(secured, secret).status_code == 200
    limited = chat(secured, secret)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["type"] == "rate_limit_error"


def test_spend_api_shows_a_key_only_its_own_spend(secured: AsgiServer) -> None:
    mine = str(new_key(secured)["key"])
    other = str(new_key(secured)["key"])
    for _ in range(3):
        assert chat(secured, mine).status_code == 200
    assert chat(secured, other).status_code == 200
    deadline = time.monotonic() + 5
    while True:
        total = httpx.get(secured.url + "/v1/spend?group_by=key", headers=auth(MASTER)).json()["total"]
        if total["requests"] == 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert total["requests"] == 4 and Decimal(str(total["cost"])) == Decimal("0.0008")
    own = httpx.get(secured.url + "/v1/spend?group_by=model", headers=auth(mine)).json()
    assert own["total"]["requests"] == 3
    [echo] = own["data"]
    assert (echo["group"], echo["model"], echo["requests"]) == ("echo4", "echo4", 3)
    assert (echo["prompt_tokens"], echo["completion_tokens"], echo["cost"]) == (6, 6, 0.0006)
    assert (echo["unpriced_requests"], echo["failed"]) == (0, 0)


def wait_for_total(gateway: AsgiServer, query: str, requests: int) -> dict[str, object]:
    """The spend total once the ledger has written what was sent (rows are written off the response path)."""
    deadline = time.monotonic() + 10
    while True:
        report: dict[str, object] = httpx.get(gateway.url + "/v1/spend?" + query, headers=auth(MASTER)).json()
        total = report["total"]
        assert isinstance(total, dict)
        answered_and_refused = total["requests"] + sum(total["refused"].values()) + total["failed"]
        if answered_and_refused >= requests or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def test_refused_requests_are_counted_apart_from_answered_ones(secured: AsgiServer) -> None:
    worst = (len(orjson.dumps(ECHO)) + 8 + 10) * Decimal("0.00005")
    budgeted = new_key(secured, max_budget=str(worst + Decimal("0.0004") + Decimal("0.00001")))
    limited = new_key(secured, rpm_limit=1)
    fenced = new_key(secured, models=["gpt-4o"])
    statuses = [chat(secured, str(budgeted["key"])).status_code for _ in range(5)]
    statuses += [chat(secured, str(limited["key"])).status_code for _ in range(2)]
    statuses += [chat(secured, str(fenced["key"])).status_code, chat(secured, "sk-calc-unknown").status_code]
    assert statuses == [200, 200, 200, 429, 429, 200, 429, 403, 401]
    report = wait_for_total(secured, "group_by=key", 9)
    groups = {g["key"]: g for g in report["data"]}  # type: ignore[attr-defined]
    assert groups[budgeted["id"]]["requests"] == 3
    assert groups[budgeted["id"]]["refused"] == {"budget": 2, "rate_limit": 0, "auth": 0}
    assert Decimal(str(groups[budgeted["id"]]["cost"])) == Decimal("0.0006")
    assert (groups[limited["id"]]["requests"], groups[limited["id"]]["refused"]["rate_limit"]) == (1, 1)
    assert (groups[fenced["id"]]["requests"], groups[fenced["id"]]["refused"]["auth"]) == (0, 1)
    assert groups[None]["refused"]["auth"] == 1  # an unknown key: no key to count it under
    assert report["total"] == {**report["total"], "requests": 4, "failed": 0}  # type: ignore[dict-item]


def test_customer_and_tags_are_recorded_from_the_request(secured: AsgiServer) -> None:
    body = {**ECHO, "user": "end-user-7"}
    headers = {**auth(MASTER), "x-calcifer-tags": "search, beta", "content-type": "application/json"}
    response = httpx.post(secured.url + "/v1/chat/completions", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 200
    by_customer = wait_for_total(secured, "group_by=customer,tag", 1)
    rows = {(g["customer"], g["tag"]) for g in by_customer["data"]}  # type: ignore[attr-defined]
    assert rows == {("end-user-7", "search"), ("end-user-7", "beta")}


def test_a_coding_agents_user_header_attributes_the_spend(secured: AsgiServer) -> None:
    """Claude Code's ANTHROPIC_CUSTOM_HEADERS and Codex's http_headers set `x-calcifer-user`: the spend is
    reported under that user (the key has no user of its own), beside its tags."""
    headers = {**auth(MASTER), "x-calcifer-user": "dev-ana", "x-calcifer-tags": "agents"}
    response = httpx.post(secured.url + "/v1/chat/completions", json=ECHO, headers=headers)
    assert response.status_code == 200
    report = wait_for_total(secured, "group_by=user,tag", 1)
    rows = {(g["user"], g["tag"]) for g in report["data"]}  # type: ignore[attr-defined]
    assert rows == {("dev-ana", "agents")}
