"""`GET /admin/requests` and `/admin/requests/{id}` through a real gateway: the master key only,
newest first with a cursor, filters, one request's row, bad parameters as OpenAI-shaped 400s."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer
from tests.http.openapi import errors

MASTER = "mk-requests-0123456789abcdefghijk"
ECHO = {"model": "echo4", "messages": [{"role": "user", "content": "one two three"}]}


def auth(key: str = MASTER) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def eventually(check: Callable[[], Any], timeout: float = 15) -> Any:
    """`check()` once it is truthy (the ledger writes in the background), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "the ledger never showed the rows"
            return found
        time.sleep(0.05)


@pytest.fixture
def secured(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})


def listing(gateway: AsgiServer, **params: str) -> Any:
    answer = httpx.get(gateway.url + "/admin/requests", params=params, headers=auth())
    assert answer.status_code == 200, answer.text
    return orjson.loads(answer.content)


def test_the_request_log_pages_newest_first_with_filters(secured: AsgiServer) -> None:
    key = httpx.post(secured.url + "/admin/keys", json={"name": "app"}, headers=auth()).json()
    ids = []
    for n in range(5):
        headers = {**auth(key["key"] if n % 2 else MASTER), "x-request-id": f"req-log-{n}"}
        body = {**ECHO, "stream": n == 4}
        answer = httpx.post(secured.url + "/v1/chat/completions", json=body, headers=headers)
        assert answer.status_code == 200
        ids.append(f"req-log-{n}")
    missing = httpx.post(
        secured.url + "/v1/chat/completions", json={**ECHO, "model": "nope"}, headers=auth(MASTER)
    )
    assert missing.status_code == 404
    eventually(lambda: len(listing(secured, model="echo4")["data"]) == 5)
    first = listing(secured, model="echo4", limit="2")
    assert [r["id"] for r in first["data"]] == ["req-log-4", "req-log-3"] and first["has_more"]
    second = listing(secured, model="echo4", limit="2", before=str(first["next_before"]))
    third = listing(secured, model="echo4", limit="2", before=str(second["next_before"]))
    assert [r["id"] for r in second["data"] + third["data"]] == ["req-log-2", "req-log-1", "req-log-0"]
    assert third["has_more"] is False and third["next_before"] is None
    assert [r["id"] for r in listing(secured, key_id=key["id"])["data"]] == ["req-log-3", "req-log-1"]
    assert [r["id"] for r in listing(secured, streamed="true")["data"]] == ["req-log-4"]
    assert [r["status"] for r in listing(secured, status="4xx")["data"]] == [404]
    one = httpx.get(secured.url + "/admin/requests/req-log-3", headers=auth())
    row = orjson.loads(one.content)
    assert one.status_code == 200 and row["key_id"] == key["id"] and row["model"] == "echo4"
    assert (row["prompt_tokens"], row["completion_tokens"], row["status"]) == (3, 3, 200)
    assert Decimal(str(row["cost"])) == Decimal("0.0003") and b'"cost":0.0003' in one.content
    assert key["key"] not in one.text and MASTER not in one.text


def test_the_request_log_is_for_the_master_key_and_checks_its_parameters(secured: AsgiServer) -> None:
    key = httpx.post(secured.url + "/admin/keys", json={"name": "app"}, headers=auth()).json()
    assert httpx.get(secured.url + "/admin/requests", headers=auth(key["key"])).status_code == 403
    assert httpx.get(secured.url + "/admin/requests").status_code == 401
    for query, param in [("status=9xx", "status"), ("limit=0", "limit"), ("colour=red", "colour")]:
        answer = httpx.get(f"{secured.url}/admin/requests?{query}", headers=auth())
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param
        assert errors("ErrorResponse", answer.json()) == []
    unknown = httpx.get(secured.url + "/admin/requests/nope", headers=auth())
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "request_not_found"
