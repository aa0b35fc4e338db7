"""What a hostile client found, each answered now: a clean 4xx in the route's shape, never a 500 or a
dropped connection (the numbered defects of the fuzzing report, and what it found besides)."""

from __future__ import annotations

import socket
import time

import httpx2 as httpx
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer

from calcifer.domain.nesting import MAX_DEPTH

MESSAGES = [{"role": "user", "content": "hi"}]
CHAT_ROUTES = ["/v1/chat/completions", "/v1/completions"]


def openai_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def anthropic_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"]
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    return dict(body["error"])


def nested(depth: int) -> object:
    """A JSON value `depth` levels deep (objects and arrays in turn)."""
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def deep_body(depth: int) -> bytes:
    """A chat body whose `metadata` makes it `depth` levels deep, written as text (no encoder recurses)."""
    opening = "".join('{"k":' if level % 2 else "[" for level in range(depth - 1))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth - 1)))
    head = '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"metadata":'
    return (head + opening + '"leaf"' + closing + "}").encode()


# 1. The requested model's name was copied into `x-calcifer-model`.
@pytest.mark.parametrize("path", CHAT_ROUTES)
@pytest.mark.parametrize(
    "model", ["gpt-4o-mini\n", "\u001b", "a\u0000b", "\u0100", "模型", "🙂", "x" * 150_000]
)
def test_an_unknown_model_name_no_header_can_carry_is_left_out(
    gateway: AsgiServer, path: str, model: str
) -> None:
    response = httpx.post(gateway.url + path, json={"model": model, "messages": MESSAGES}, timeout=30)
    error = openai_error(response, 404)
    assert error["code"] == "model_not_found"
    assert "x-calcifer-model" not in response.headers
    assert response.headers["x-calcifer-attempts"] == "0"


@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_an_unknown_model_name_that_is_plain_text_is_echoed(gateway: AsgiServer, path: str) -> None:
    response = httpx.post(gateway.url + path, json={"model": "no-such-model-1", "messages": MESSAGES})
    openai_error(response, 404)
    assert response.headers["x-calcifer-model"] == "no-such-model-1"


def test_an_unknown_model_on_the_messages_route_is_anthropic_shaped(gateway: AsgiServer) -> None:
    body = {"model": "\u0100\n", "max_tokens": 5, "messages": MESSAGES}
    response = httpx.post(gateway.url + "/v1/messages", json=body)
    assert anthropic_error(response, 404)["type"] == "not_found_error"
    assert "x-calcifer-model" not in response.headers


# 2. A body nested deeper than the providers can encode again got 500.
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 255, 600, 1024])
@pytest.mark.parametrize("path", CHAT_ROUTES)
def test_a_body_nested_deeper_than_can_be_forwarded_is_400(
    gateway: AsgiServer, path: str, depth: int
) -> None:
    response = httpx.post(gateway.url + path, content=deep_body(depth))
    error = openai_error(response, 400)
    assert "nested too deeply" in str(error["message"]) and str(MAX_DEPTH) in str(error["message"])


def test_the_deepest_body_accepted_is_forwarded(gateway: AsgiServer) -> None:
    # OpenAI passthrough: the fake upstream gets it encoded again, whole.
    deep = {"model": "gpt-4o", "messages": MESSAGES, "extra": nested(MAX_DEPTH - 1)}
    assert httpx.post(gateway.url + "/v1/chat/completions", json=deep).status_code == 200


def test_a_deep_tool_input_on_the_messages_route_is_an_anthropic_400(gateway: AsgiServer) -> None:
    call = {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": nested(300)}}
    body = {
        "model": "echo4",
        "max_tokens": 5,
        "messages": [*MESSAGES, {"role": "assistant", "content": [call]}],
    }
    error = anthropic_error(httpx.post(gateway.url + "/v1/messages", json=body), 400)
    assert error["type"] == "invalid_request_error" and "nested too deeply" in str(error["message"])
    answered = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}
    called = {"role": "assistant", "content": [{**call, "input": {}}]}
    shallow = {**body, "messages": [*MESSAGES, called, answered]}
    assert httpx.post(gateway.url + "/v1/messages", json=shallow).status_code == 200


# 3. `x-calcifer-cache: on` with a deep body: the cache key was built with recursion.
def test_a_cached_request_as_deep_as_accepted_is_served_twice(gateway: AsgiServer) -> None:
    body = {"model": "echo4", "messages": MESSAGES, "extra": nested(MAX_DEPTH - 1)}
    first = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-calcifer-cache": "on"})
    again = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers={"x-calcifer-cache": "on"})
    assert first.status_code == again.status_code == 200
    assert again.headers["x-calcifer-cache"] == "hit"


# 4. `Cache-Control: max-age=²`: superscript digits passed `isdigit()` and failed `float()`.
@pytest.mark.parametrize(
    "value",
    [b"max-age=\xb2", b"s-maxage=\xb9\xb3", "max-age=٣".encode(), b"max-age=" + b"9" * 5000, b"max-age=-1"],
)
@pytest.mark.parametrize("path", [*CHAT_ROUTES, "/v1/messages"])
def test_odd_cache_control_values_never_fail_a_request(gateway: AsgiServer, path: str, value: bytes) -> None:
    body = {"model": "echo4", "messages": MESSAGES, "max_tokens": 5}
    response = httpx.post(gateway.url + path, json=body, headers={b"cache-control": value})
    assert response.status_code == 200, response.text


# 5. A time past the calendar's ends once in UTC overflowed outside the check.
@pytest.mark.parametrize(
    "query", ["since=0001-01-01T00:00:00%2B14:00", "until=9999-12-31T23:59:59-14:00", "since=99999999999999d"]
)
def test_a_spend_time_outside_the_calendar_is_400(gateway: AsgiServer, query: str) -> None:
    error = openai_error(httpx.get(gateway.url + "/v1/spend?" + query), 400)
    assert error["param"] in ("since", "until")


# 6. A 405 names the methods the route takes.
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/messages", "POST"),
        ("POST", "/health", "GET, HEAD"),
        ("PUT", "/v1/models", "GET, HEAD"),
    ],
)
def test_a_405_has_an_allow_header(gateway: AsgiServer, method: str, path: str, allow: str) -> None:
    response = httpx.request(method, gateway.url + path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow


# 7. HEAD on the GET routes: a load balancer's `HEAD /health`.
@pytest.mark.parametrize("path", ["/health", "/ready", "/health/live", "/v1/models", "/v1/spend"])
def test_head_answers_like_get_without_a_body(gateway: AsgiServer, path: str) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        get = client.get(path)
        head = client.head(path)
        assert head.status_code == get.status_code == 200
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert client.get("/health").status_code == 200  # the connection is still in step


# Also found: request headers had no size or count limit.
def test_too_many_or_too_large_headers_are_431(gateway: AsgiServer) -> None:
    many = [(f"x-h{i}", "1") for i in range(200)]
    response = httpx.get(gateway.url + "/v1/models", headers=many)
    assert openai_error(response, 431)["code"] == "request_headers_too_large"
    big = httpx.post(gateway.url + "/v1/messages", json={}, headers={"x-big": "v" * (1 << 20)}, timeout=30)
    assert anthropic_error(big, 431)["type"] == "invalid_request_error"
    assert httpx.get(gateway.url + "/v1/models", headers=[("x-h", "1")] * 20).status_code == 200


def test_header_limits_are_configurable(start_gateway: StartGateway, gateway_env: dict[str, str]) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_MAX_HEADERS": "30", "CALCIFER_MAX_HEADER_SIZE": "2KiB"})
    assert httpx.get(gateway.url + "/v1/models", headers=[("x-h", "1")] * 20).status_code == 200
    assert httpx.get(gateway.url + "/v1/models", headers=[("x-h", "1")] * 40).status_code == 431
    assert httpx.get(gateway.url + "/v1/models", headers={"x-big": "v" * 3000}).status_code == 431


# Also found: `max_tokens: 0` on /v1/messages was reported against a field the client never sent.
@pytest.mark.parametrize("value", [0, -3])
def test_messages_max_tokens_below_one_names_max_tokens(gateway: AsgiServer, value: int) -> None:
    body = {"model": "echo4", "max_tokens": value, "messages": MESSAGES}
    error = anthropic_error(httpx.post(gateway.url + "/v1/messages", json=body), 400)
    assert "max_tokens" in str(error["message"]) and "max_completion_tokens" not in str(error["message"])


# Also found: the documented CORS defaults refused the Anthropic SDK's header and the admin API's PATCH.
@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", "x-api-key, anthropic-version, content-type"),
        ("POST", "authorization, content-type, x-stainless-os, x-stainless-retry-count"),
        ("PATCH", "authorization, content-type"),
    ],
)
def test_browser_clients_pass_the_default_cors_preflight(
    gateway: AsgiServer, method: str, headers: str
) -> None:
    preflight = httpx.options(
        gateway.url + "/v1/messages",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": method,
            "access-control-request-headers": headers,
        },
    )
    assert preflight.status_code == 200
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in headers.split(",")} <= {h.lower() for h in allowed}
    assert method in preflight.headers["access-control-allow-methods"]


# Also found: a client gone mid-upload was logged as a 500.
def test_a_client_gone_mid_upload_is_499_not_500(
    gateway: AsgiServer, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"model": "echo4"'
        )
        time.sleep(0.2)  # the server is waiting for the rest of the body when the client leaves
    assert httpx.get(gateway.url + "/health").status_code == 200
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
