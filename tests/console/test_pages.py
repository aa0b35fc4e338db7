"""The console's pages over HTTP: their numbers are the APIs', and their forms change what the APIs do."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import httpx2 as httpx
import orjson

from tests.console.conftest import MASTER, auth, csrf_of
from tests.fakes.threaded import AsgiServer
from tests.http.test_request_log import eventually

ECHO = {"model": "echo4", "max_tokens": 5, "messages": [{"role": "user", "content": "one two three"}]}


def chat(gateway: AsgiServer, key: str, request_id: str | None = None) -> httpx.Response:
    headers = {**auth(key), **({"x-request-id": request_id} if request_id else {})}
    return httpx.post(gateway.url + "/v1/chat/completions", json=ECHO, headers=headers, timeout=10)


def spend_api(gateway: AsgiServer, **params: str) -> dict[str, object]:
    answer = httpx.get(gateway.url + "/v1/spend", params=params, headers=auth())
    parsed: dict[str, object] = orjson.loads(answer.content)
    return parsed


def test_overview_numbers_are_the_spend_apis(secured: AsgiServer, browser: httpx.Client) -> None:
    for n in range(3):
        assert chat(secured, MASTER, f"ov-{n}").status_code == 200
    eventually(lambda: spend_api(secured)["total"]["requests"] == 3)  # type: ignore[index]
    total = spend_api(secured, since="1d")["total"]
    page = browser.get("/ui").text
    for period in ("today", "week", "month"):  # every request of the ledger was made today
        card = re.search(
            rf'data-period="{period}">.*?data-cost="([^"]*)".*?data-requests>([\d,]+)<', page, re.S
        )
        assert card is not None
        assert Decimal(card.group(1)) == Decimal(str(total["cost"])) == Decimal("0.0009")  # type: ignore[index]
        assert int(card.group(2)) == 3
    assert "$0.0009" in page and "echo4" in page


def test_create_a_key_see_its_secret_once_edit_and_revoke_it(
    secured: AsgiServer, browser: httpx.Client
) -> None:
    token = csrf_of(browser.get("/ui/keys").text)
    created = browser.post(
        "/ui/keys",
        data={
            "csrf": token,
            "name": "search",
            "team": "red",
            "max_budget": "1",
            "budget_period": "daily",
            "models": "echo4",
            "rpm_limit": "",
            "tpm_limit": "",
        },
    )
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = re.search(r'id="secret" class="secret">(sk-calc-[^<]+)<', created.text)
    assert secret is not None
    keys = httpx.get(secured.url + "/admin/keys", headers=auth()).json()["data"]
    key = next(k for k in keys if k["name"] == "search")
    assert key["max_budget"] == 1 and key["models"] == ["echo4"]
    assert (key["team_id"], key["metadata"]) == ("red", {})
    for path in ["/ui/keys", f"/ui/keys/{key['id']}", "/ui"]:
        assert secret.group(1) not in browser.get(path).text
    assert chat(secured, secret.group(1)).status_code == 200  # well inside the budget
    refused = browser.post("/ui/keys", data={"csrf": token, "name": "", "budget_period": "total"})
    assert refused.status_code == 400 and "name" in refused.text
    edited = browser.post(
        f"/ui/keys/{key['id']}",
        data={
            "csrf": token,
            "name": "search",
            "team": "blue",
            "max_budget": "0.0001",
            "budget_period": "daily",
            "models": "",
            "rpm_limit": "60",
            "tpm_limit": "",
        },
    )
    assert edited.status_code == 303
    after = httpx.get(secured.url + f"/admin/keys/{key['id']}", headers=auth()).json()
    assert (after["max_budget"], after["models"], after["rpm_limit"]) == (0.0001, [], 60)
    assert (after["team_id"], after["metadata"]) == ("blue", {})
    assert chat(secured, secret.group(1)).status_code == 429  # the lower budget refuses
    bad = browser.post(f"/ui/keys/{key['id']}", data={"csrf": token, "name": "x", "rpm_limit": "-4"})
    assert bad.status_code == 400 and "rpm_limit" in bad.text
    for not_ascii in ("²", "٣"):  # digits to str.isdigit, not to int() or the API
        bad = browser.post(f"/ui/keys/{key['id']}", data={"csrf": token, "name": "x", "tpm_limit": not_ascii})
        assert bad.status_code == 400 and "tpm_limit" in bad.text
    revoked = browser.post(f"/ui/keys/{key['id']}/revoke", data={"csrf": token})
    assert revoked.status_code == 303 and chat(secured, secret.group(1)).status_code == 401
    assert "revoked" in browser.get(f"/ui/keys/{key['id']}").text
    assert browser.get("/ui/keys/key_nope").status_code == 404
    assert browser.post("/ui/keys/key_nope/revoke", data={"csrf": token}).status_code == 404


def test_requests_page_lists_filters_and_opens_one_request(
    secured: AsgiServer, browser: httpx.Client
) -> None:
    for n in range(3):
        assert chat(secured, MASTER, f"rq-{n}").status_code == 200
    eventually(lambda: "rq-2" in browser.get("/ui/requests").text)
    page = browser.get("/ui/requests", params={"model": "echo4"}).text
    assert page.index("rq-2") < page.index("rq-1") < page.index("rq-0")
    assert "rq-0" not in browser.get("/ui/requests", params={"model": "gpt-4o"}).text
    bad = browser.get("/ui/requests", params={"status": "bad"})
    assert bad.status_code == 400 and "status" in bad.text
    one = browser.get("/ui/requests/rq-1")
    assert one.status_code == 200 and "rq-1" in one.text and "$0.0003" in one.text
    assert browser.get("/ui/requests/nope").status_code == 404


def test_spend_explorer_and_its_csv_are_the_spend_api(secured: AsgiServer, browser: httpx.Client) -> None:
    for n in range(2):
        assert chat(secured, MASTER, f"sp-{n}").status_code == 200
    eventually(lambda: spend_api(secured)["total"]["requests"] == 2)  # type: ignore[index]
    page = browser.get("/ui/spend", params={"group_by": "provider", "since": "7d"})
    assert page.status_code == 200 and "echo" in page.text and "$0.0006" in page.text
    exported = browser.get("/ui/spend.csv", params={"group_by": "model", "since": "7d"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows == [
        ["model", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_requests"],
        ["echo4", "2", "6", "6", "0.0006", "0"],
    ]
    two = browser.get("/ui/spend.csv", params={"group_by": "model", "then_by": "provider", "since": "7d"})
    assert list(csv.reader(io.StringIO(two.text)))[1:] == [["echo4", "echo", "2", "6", "6", "0.0006", "0"]]
    assert "spend-by-model-provider.csv" in two.headers["content-disposition"]
    page = browser.get("/ui/spend", params={"group_by": "day", "then_by": "model", "team": "nobody"})
    assert page.status_code == 200 and "No spend in this period." in page.text
    bad = browser.get("/ui/spend", params={"group_by": "colour"})
    assert bad.status_code == 400 and "group_by" in bad.text
    assert browser.get("/ui/spend.csv", params={"since": "never"}).status_code == 400
