"""`/metrics` scraped during real traffic through a real gateway (two loopback OpenAI fakes as deployments
of gpt-4o): the values equal what the ledger recorded and what the responses reported."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx2 as httpx

from tests.fakes.openai_server import Script, error_body
from tests.observability.scrape import scrape
from tests.routing.conftest import Start

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}
CHAT = "/v1/chat/completions"


def test_metrics_match_the_ledger_through_failover_streams_and_cache_hits(routed: Start) -> None:
    setup = routed()
    metrics_url = setup.gateway.url + "/metrics"
    before = scrape(metrics_url)
    assert before.value("calcifer_cost_usd_total") == 0
    setup.primary.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    failed_over = httpx.post(setup.url, json=BODY, timeout=10)
    assert failed_over.headers["x-calcifer-attempts"] == "2"
    plain = httpx.post(setup.url, json=BODY, timeout=10)
    cached = [httpx.post(setup.url, json=BODY, headers={"x-calcifer-cache": "on"}, timeout=10) for _ in "ab"]
    assert cached[1].headers["x-calcifer-cache"] == "hit"
    with httpx.stream("POST", setup.url, json={**BODY, "stream": True}, timeout=10) as streamed:
        lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    unknown = httpx.post(setup.url, json={**BODY, "model": "no-such-model"}, timeout=10)
    assert unknown.status_code == 404

    during = scrape(metrics_url)
    answered = [failed_over, plain, cached[0]]
    reported = {
        kind: sum(r.json()["usage"][kind] for r in answered)
        for kind in ("prompt_tokens", "completion_tokens")
    }
    assert during.value("calcifer_requests_total", route=CHAT, status="200") == 5
    assert during.value("calcifer_requests_total", route=CHAT, status="404") == 1
    assert during.value("calcifer_requests_total", route="/metrics", status="200") == 1  # the first scrape
    assert during.value("calcifer_reattempts_total", kind="failover") == 1
    assert during.value("calcifer_upstream_attempts_total", provider="backup") == 2
    assert during.value("calcifer_upstream_attempts_total", provider="primary") == 3
    assert during.value("calcifer_cache_hits_total", model="gpt-4o") == 1
    assert Decimal(str(during.value("calcifer_cache_saved_usd_total"))) == Decimal(
        cached[1].headers["x-calcifer-cost-saved"]
    )
    # GenAI: one duration sample per answered request (cache hits are not upstream operations), the
    # failed-over one labelled with the provider that answered.
    genai = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o"}
    assert during.value("gen_ai_client_operation_duration_seconds_count", **genai) == 4
    assert during.value("gen_ai_client_operation_duration_seconds_count", gen_ai_provider_name="backup") == 1
    assert during.value("gen_ai_client_operation_time_to_first_chunk_seconds_count", **genai) == 1
    assert during.value("gen_ai_client_operation_time_per_output_chunk_seconds_count", **genai) == 1
    assert during.value("calcifer_gateway_overhead_seconds_count", route=CHAT) == 6
    assert during.value("calcifer_requests_in_flight") == 1  # the scrape itself

    rows = setup.rows()  # stops the gateway: its ledger is written
    assert len(rows) == 6
    answered_rows = [r for r in rows if r.status == 200 and not r.cache_hit]
    ledger_cost = sum((r.cost or Decimal(0) for r in rows), Decimal(0))
    assert ledger_cost > 0
    assert abs(Decimal(str(during.value("calcifer_cost_usd_total"))) - ledger_cost) < Decimal("1e-15")
    assert during.value("calcifer_tokens_total", type="input") == sum(r.prompt_tokens for r in answered_rows)
    assert during.value("calcifer_tokens_total", type="output") == sum(
        r.completion_tokens for r in answered_rows
    )
    streamed_row = next(r for r in rows if r.streamed)
    assert during.value("calcifer_tokens_total", type="input") == (
        reported["prompt_tokens"] + streamed_row.prompt_tokens
    )
    assert during.value("gen_ai_client_token_usage_sum", gen_ai_token_type="output") == (
        reported["completion_tokens"] + streamed_row.completion_tokens
    )
    assert during.value("gen_ai_client_token_usage_count", gen_ai_token_type="input") == 4


def test_cooling_deployments_and_the_ledgers_writes_are_gauged(routed: Start) -> None:
    setup = routed()
    boom = Script(status=500, body=error_body("The server had an error", "server_error"))
    setup.primary.script(boom, boom)  # two failures within the window: primary cools for 30 s
    for _ in range(2):
        assert httpx.post(setup.url, json=BODY, timeout=10).status_code == 200
    found = scrape(setup.gateway.url + "/metrics")
    primary = found.value("calcifer_deployment_cooldown_seconds", route="gpt-4o", deployment="primary/gpt-4o")
    assert 25 < primary <= 30
    assert (
        found.value("calcifer_deployment_cooldown_seconds", route="gpt-4o", deployment="backup/gpt-4o") == 0
    )
    assert found.value("calcifer_reattempts_total", kind="failover") == 2
    deadline = time.monotonic() + 10
    while found.value("calcifer_database_write_seconds_count") < 1 and time.monotonic() < deadline:
        found = scrape(setup.gateway.url + "/metrics")  # the ledger writes within 50 ms
    assert found.value("calcifer_database_write_seconds_count") >= 1
    assert found.value("calcifer_database_errors_total") == 0
    assert found.value("calcifer_ledger_queue_depth") in (0, 1)  # one row may arrive while a batch is written
    assert 0 <= found.value("calcifer_ledger_write_lag_seconds") < 5
