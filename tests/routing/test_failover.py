"""Fault injection, whole answers: each failure of `primary` and exactly what the client and ledger see."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx2 as httpx

from tests.fakes.openai_server import Script, error_body
from tests.routing.conftest import Start

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
# The fake's usage: 12 prompt and 25 completion tokens. gpt-4o: $2.50 / $10 per 1M; gpt-4.1: $2 / $8.
GPT_4O = Decimal("0.00028")
GPT_41 = Decimal("0.000224")


def test_a_429_with_retry_after_goes_to_backup_and_primary_waits_out_its_cooldown(routed: Start) -> None:
    setup = routed()
    setup.primary.script(
        Script(status=429, body=error_body("Rate limit", "rate_limit_error"), headers={"Retry-After": "20"})
    )
    first = httpx.post(setup.url, json=BODY, timeout=10)
    second = httpx.post(setup.url, json=BODY, timeout=10)
    for answer in (first, second):
        assert answer.status_code == 200
        assert answer.json()["usage"]["cost"] == float(GPT_4O)
        assert answer.headers["x-calcifer-provider"] == "backup"
        assert answer.headers["x-calcifer-model"] == "gpt-4o"
        assert answer.headers["x-calcifer-cost"] == str(GPT_4O)
    assert first.headers["x-calcifer-attempts"] == "2"
    assert second.headers["x-calcifer-attempts"] == "1"  # primary is cooling for 20 s: not asked
    assert len(setup.primary.requests) == 1 and len(setup.backup.requests) == 2
    rows = setup.rows()
    assert [(r.provider, r.status, r.cost, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        ("backup", 200, GPT_4O, 12, 25),
        ("backup", 200, GPT_4O, 12, 25),
    ]


def test_repeated_500s_cool_primary_after_two_failures(routed: Start) -> None:
    setup = routed()
    boom = Script(status=500, body=error_body("The server had an error", "server_error"))
    setup.primary.script(boom, boom)
    attempts = [httpx.post(setup.url, json=BODY, timeout=10).headers["x-calcifer-attempts"] for _ in range(3)]
    assert attempts == ["2", "2", "1"]
    assert len(setup.primary.requests) == 2 and len(setup.backup.requests) == 3


def test_a_hang_past_the_provider_timeout_fails_over(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(delay=3))
    started = time.monotonic()
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    took = time.monotonic() - started
    assert answer.status_code == 200 and answer.headers["x-calcifer-provider"] == "backup"
    assert answer.headers["x-calcifer-attempts"] == "2"
    assert 0.45 < took < 2.0  # primary's 0.5 s read timeout, then backup at once


def test_the_request_timeout_bounds_every_attempt_together(routed: Start) -> None:
    # Each deployment alone would time out after 0.5 s; the request as a whole may take 0.8 s.
    setup = routed(request_timeout="800ms")
    setup.primary.script(Script(delay=3))
    setup.backup.script(Script(delay=3))
    started = time.monotonic()
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    took = time.monotonic() - started
    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "request_timeout"
    assert "request timeout of 0.8s (2 attempts" in answer.json()["error"]["message"]
    assert answer.headers["x-calcifer-attempts"] == "2"
    assert answer.headers["x-calcifer-provider"] == "backup"
    assert 0.75 < took < 1.5  # never the 2 x 0.5 s + 3 s of attempts left unbounded
    [row] = setup.rows()
    assert (row.provider, row.status, row.cost, row.prompt_tokens) == ("backup", 504, Decimal(0), 0)


def test_a_reset_connection_fails_over(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(reset=True))
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Hello! How can I help?"
    assert (answer.headers["x-calcifer-provider"], answer.headers["x-calcifer-attempts"]) == ("backup", "2")


def test_a_client_error_is_not_failed_over(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(status=400, body=error_body("Invalid 'tools'", "invalid_request_error")))
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == "Invalid 'tools'"
    assert (answer.headers["x-calcifer-provider"], answer.headers["x-calcifer-attempts"]) == ("primary", "1")
    assert setup.backup.requests == []


def test_context_overflow_goes_to_the_bigger_model(routed: Start) -> None:
    setup = routed()
    too_long = error_body(
        "This model's maximum context length is 128000 tokens.",
        "invalid_request_error",
        "context_length_exceeded",
    )
    setup.primary.script(Script(status=400, body=too_long))
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    assert answer.status_code == 200
    assert (answer.headers["x-calcifer-provider"], answer.headers["x-calcifer-model"]) == (
        "backup",
        "gpt-4.1",
    )
    assert answer.headers["x-calcifer-attempts"] == "2"
    assert answer.json()["usage"]["cost"] == float(GPT_41)
    assert setup.backup.requests[0]["model"] == "gpt-4.1"  # the request as the bigger model must see it
    [row] = setup.rows()
    assert (row.model, row.provider, row.cost) == ("gpt-4o", "backup", GPT_41)


def test_everything_failing_is_the_last_error_with_its_attempts(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(status=503, body=error_body("overloaded", "server_error")))
    setup.backup.script(Script(status=502, body=error_body("bad gateway", "server_error")))
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    assert answer.status_code == 502 and answer.json()["error"]["message"] == "bad gateway"
    assert (answer.headers["x-calcifer-provider"], answer.headers["x-calcifer-attempts"]) == ("backup", "2")


def test_an_unknown_model_says_no_provider_was_tried(routed: Start) -> None:
    setup = routed()
    answer = httpx.post(setup.url, json={**BODY, "model": "no-such-model"}, timeout=10)
    assert answer.status_code == 404
    assert (
        answer.headers["x-calcifer-attempts"] == "0" and answer.headers["x-calcifer-model"] == "no-such-model"
    )
    assert "x-calcifer-provider" not in answer.headers
