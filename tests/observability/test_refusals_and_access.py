"""Budget and rate-limit refusals by level; `/metrics` behind a bearer token and on its own port."""

from __future__ import annotations

import socket
from decimal import Decimal

import httpx2 as httpx
import orjson

from tests.conftest import StartGateway
from tests.fakes.threaded import free_port
from tests.http.test_keys_budgets import MASTER, auth, chat, new_key
from tests.observability.scrape import Scrape, scrape


def test_budget_and_rate_limit_refusals_are_counted_by_level(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})
    created = new_key(gateway, max_budget="0.003")
    budgeted = str(created["key"])
    limited = str(new_key(gateway, rpm_limit=1)["key"])
    budget_statuses = [chat(gateway, budgeted).status_code for _ in range(4)]
    rate_statuses = [chat(gateway, limited).status_code for _ in range(3)]
    assert budget_statuses.count(429) >= 1 and rate_statuses == [200, 429, 429]
    found = scrape(gateway.url + "/metrics")
    assert found.value("calcifer_refusals_total", reason="budget", level="key") == budget_statuses.count(429)
    assert found.value("calcifer_refusals_total", reason="rate_limit", level="key") == 2
    assert found.value("calcifer_requests_total", route="/v1/chat/completions", status="429") == (
        budget_statuses.count(429) + 2
    )
    # No key label by default: nothing in the exposition names a key.
    assert "key" not in {name for labels in found.labels("calcifer_requests_total") for name in labels}
    # The budget left, for the key that has one (and no other).
    spent = Decimal(
        str(httpx.get(f"{gateway.url}/admin/keys/{created['id']}", headers=auth(MASTER)).json()["spend"])
    )
    left = found.value("calcifer_budget_remaining_usd", level="key", id=str(created["id"]))
    assert abs(Decimal(str(left)) - (Decimal("0.003") - spent)) < Decimal("1e-12")
    assert found.value("calcifer_budget_limit_usd", level="key", id=str(created["id"])) == 0.003
    assert len(found.labels("calcifer_budget_remaining_usd")) == 1


def test_a_metrics_token_is_required_when_set(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_METRICS_TOKEN": "scrape-secret-1"})
    url = gateway.url + "/metrics"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert "calcifer_requests_total" in scrape(url, "scrape-secret-1").names


def test_metrics_on_their_own_port(start_gateway: StartGateway, gateway_env: dict[str, str]) -> None:
    port = free_port()
    gateway = start_gateway(
        {
            **gateway_env,
            "SERVER_HOST": "127.0.0.1",
            "CALCIFER_METRICS_PORT": str(port),
            "CALCIFER_METRICS_TOKEN": "scrape-secret-2",
        }
    )
    body = {"model": "echo4", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
    assert httpx.get(gateway.url + "/metrics").status_code == 404  # not on the gateway's port
    own = f"http://127.0.0.1:{port}"
    assert httpx.get(own + "/metrics").status_code == 401
    assert httpx.get(own + "/other", headers={"authorization": "Bearer scrape-secret-2"}).status_code == 404
    assert (
        httpx.post(own + "/metrics", headers={"authorization": "Bearer scrape-secret-2"}).status_code == 405
    )
    found = scrape(own + "/metrics", "scrape-secret-2")
    assert found.value("calcifer_requests_total", route="/v1/chat/completions", status="200") == 1
    assert found.value("calcifer_cost_usd_total", provider="echo", model="echo4") > 0
    # A client that sends half a request head and goes away does not disturb the server.
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /metr")
    assert isinstance(scrape(own + "/metrics", "scrape-secret-2"), Scrape)


def test_chosen_labels_are_added_by_the_config_file(
    start_gateway: StartGateway, gateway_env: dict[str, str], tmp_path: object
) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "calcifer.yaml"
    config.write_text("metrics:\n  labels: [team, user, customer]\n")
    gateway = start_gateway({**gateway_env, "CALCIFER_CONFIG": str(config)})
    metadata = {"team": "blue", "user": "ada"}
    body = {"model": "echo4", "messages": [{"role": "user", "content": "hi"}], "metadata": metadata}
    content = orjson.dumps({**body, "user": "customer-7"})  # OpenAI's `user`: the end customer
    sent = httpx.post(
        gateway.url + "/v1/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert sent.status_code == 200
    found = scrape(gateway.url + "/metrics")
    assert found.value("calcifer_cost_usd_total", team="blue", user="ada") == float(
        sent.json()["usage"]["cost"]
    )
    assert found.value("calcifer_requests_total", route="/v1/chat/completions", team="blue", user="ada") == 1


def test_metrics_can_be_switched_off(start_gateway: StartGateway, gateway_env: dict[str, str]) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_METRICS": "off"})
    body = {"model": "echo4", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=body).status_code == 200
    assert httpx.get(gateway.url + "/metrics").status_code == 404
