"""Fault injection, streams: fail over only before the first byte; after it, an error event; a client that
leaves cancels the upstream at once and the ledger keeps what was delivered."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx2 as httpx
import orjson

from tests.fakes.openai_server import Script, error_body, stream_chunks
from tests.routing.conftest import Start

BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hello"}]}
# The fake's stream: "Hel", "lo", "!", usage 10 prompt + 3 completion tokens; gpt-4o: $2.50 / $10 per 1M.
STREAM_COST = Decimal("0.000055")


def _events(response: httpx.Response) -> list[str]:
    return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def _text(events: list[str]) -> str:
    parts = []
    for data in events:
        if data != "[DONE]":
            for choice in orjson.loads(data).get("choices") or []:
                parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts)


def test_a_stream_that_fails_before_its_first_byte_is_served_by_backup(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    with httpx.stream("POST", setup.url, json=BODY, timeout=10) as answer:
        events = _events(answer)
        headers = answer.headers
    assert (headers["x-calcifer-provider"], headers["x-calcifer-attempts"]) == ("backup", "2")
    assert headers["x-calcifer-model"] == "gpt-4o" and "x-calcifer-cost" not in headers
    assert _text(events) == "Hello!" and events[-1] == "[DONE]"
    [row] = setup.rows()
    assert (row.provider, row.status, row.cost, row.streamed, row.cut_short, row.estimated) == (
        "backup",
        200,
        STREAM_COST,
        True,
        False,
        False,
    )


def test_a_stream_that_hangs_before_its_first_byte_is_served_by_backup(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(delay=3))
    started = time.monotonic()
    with httpx.stream("POST", setup.url, json=BODY, timeout=10) as answer:
        events = _events(answer)
        headers = answer.headers
    assert 0.45 < time.monotonic() - started < 2.0
    assert (headers["x-calcifer-provider"], headers["x-calcifer-attempts"]) == ("backup", "2")
    assert _text(events) == "Hello!"


def test_a_stream_that_dies_midway_ends_with_an_error_event_and_is_not_failed_over(routed: Start) -> None:
    setup = routed()
    setup.primary.script(Script(cut_after=2))  # the role chunk and "Hel", then the connection drops
    with httpx.stream("POST", setup.url, json=BODY, timeout=10) as answer:
        events = _events(answer)
        headers = answer.headers
    assert (headers["x-calcifer-provider"], headers["x-calcifer-attempts"]) == ("primary", "1")
    assert _text(events[:-1]) == "Hel"
    error = orjson.loads(events[-1])["error"]
    assert error["type"] == "server_error" and "[DONE]" not in events
    assert setup.backup.requests == []
    [row] = setup.rows()
    assert (row.provider, row.status, row.streamed, row.cut_short, row.estimated) == (
        "primary",
        502,
        True,
        True,
        True,
    )
    # No usage came: what was delivered ("Hel", one token) and the prompt are estimated and priced.
    assert row.completion_tokens == 1 and row.prompt_tokens > 0
    assert row.cost == Decimal(row.prompt_tokens) * Decimal("0.0000025") + Decimal("0.00001")


def test_a_client_that_leaves_midstream_cancels_the_upstream_and_the_ledger_keeps_what_it_got(
    routed: Start,
) -> None:
    setup = routed()
    setup.primary.script(Script(chunks=stream_chunks("gpt-4o", [f"w{i} " for i in range(50)]), delay=0.1))
    got: list[str] = []
    with httpx.stream("POST", setup.url, json=BODY, timeout=10) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                got.append(line)
            if len(got) == 3:  # the role chunk, "w0 ", "w1 "
                break
    deadline = time.monotonic() + 3
    while setup.primary.cancelled == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert setup.primary.cancelled == 1, "the upstream stream should be cancelled soon after the client left"
    assert setup.backup.requests == []
    [row] = setup.rows()
    assert (row.provider, row.status, row.streamed, row.cut_short, row.estimated) == (
        "primary",
        499,
        True,
        True,
        True,
    )
    # Chunks relayed before the gateway noticed: at least the three read, never the whole stream.
    assert 2 <= row.completion_tokens < 40
    expected = Decimal(row.prompt_tokens) * Decimal("0.0000025") + Decimal(row.completion_tokens) * Decimal(
        "0.00001"
    )
    assert row.cost == expected
