"""The response cache through a real gateway: a hit is marked, costs nothing, and records the cost saved."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import orjson

from tests.routing.conftest import Start

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "temperature": 0}
GPT_4O = Decimal("0.00028")  # 12 prompt + 25 completion tokens at $2.50 / $10 per 1M
STREAM_COST = Decimal("0.000055")  # 10 prompt + 3 completion tokens


def test_a_repeated_request_is_answered_from_the_cache(routed: Start) -> None:
    setup = routed()
    first = httpx.post(setup.url, json=BODY, headers={"x-calcifer-cache": "on"}, timeout=10)
    again = httpx.post(
        setup.url, json={**BODY, "user": "someone-else"}, headers={"x-calcifer-cache": "on"}, timeout=10
    )
    uncached = httpx.post(setup.url, json=BODY, timeout=10)  # no header, no rule for gpt-4o: not cached
    assert first.status_code == again.status_code == 200
    assert "x-calcifer-cache" not in first.headers and first.headers["x-calcifer-cost"] == str(GPT_4O)
    assert again.headers["x-calcifer-cache"] == "hit"
    assert (again.headers["x-calcifer-cost"], again.headers["x-calcifer-cost-saved"]) == ("0", str(GPT_4O))
    assert (again.headers["x-calcifer-provider"], again.headers["x-calcifer-attempts"]) == ("primary", "0")
    assert again.json()["usage"]["cost"] == 0
    assert again.json()["choices"] == first.json()["choices"]
    assert "x-calcifer-cache" not in uncached.headers
    assert len(setup.primary.requests) == 2
    rows = setup.rows()
    assert [(r.provider, r.cost, r.cache_hit, r.cost_saved, r.prompt_tokens) for r in rows] == [
        ("primary", GPT_4O, False, None, 12),
        ("primary", Decimal(0), True, GPT_4O, 12),
        ("primary", GPT_4O, False, None, 12),
    ]


def test_a_stream_is_replayed_from_the_cache(routed: Start) -> None:
    setup = routed()
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    seen: list[list[str]] = []
    headers = []
    for _ in range(2):
        with httpx.stream(
            "POST", setup.url, json=body, headers={"Cache-Control": "max-age=60"}, timeout=10
        ) as answer:
            seen.append([line for line in answer.iter_lines() if line.startswith("data: ")])
            headers.append(answer.headers)
    assert len(setup.primary.requests) == 1
    assert headers[1]["x-calcifer-cache"] == "hit" and headers[1]["x-calcifer-cost"] == "0"
    assert headers[1]["x-calcifer-cost-saved"] == str(STREAM_COST)
    assert seen[0][:-2] == seen[1][:-2]  # the same chunks, in order
    usage = [orjson.loads(line.removeprefix("data: "))["usage"] for line in (seen[0][-2], seen[1][-2])]
    assert (usage[0]["cost"], usage[1]["cost"]) == (float(STREAM_COST), 0)
    assert seen[1][-1] == "data: [DONE]"
    rows = setup.rows()
    assert [(r.cost, r.cache_hit, r.cost_saved, r.streamed, r.cut_short) for r in rows] == [
        (STREAM_COST, False, None, True, False),
        (Decimal(0), True, STREAM_COST, True, False),
    ]


def test_no_store_bypasses_the_cache(routed: Start) -> None:
    setup = routed()
    for _ in range(2):
        answer = httpx.post(setup.url, json=BODY, headers={"Cache-Control": "no-store"}, timeout=10)
        assert "x-calcifer-cache" not in answer.headers
    assert len(setup.primary.requests) == 2
