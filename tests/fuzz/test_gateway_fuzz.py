"""Property-based fuzzing of a real `calcifer serve`: every route, method, known field, header value,
query string, nesting depth, unicode, cache directive and admin payload a hostile client might send.

The invariant, for each generated request: no 5xx unless an upstream caused it, an error body in the
route's shape (Anthropic's on `/v1/messages`, OpenAI's elsewhere), an `x-request-id` on every answer;
and afterwards the gateway is healthy and prices a known request exactly as before. Hypothesis runs
derandomized (a fixed seed) with bounded examples, so the battery is the same on every run and stays
well under two minutes on two cores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.process import GatewayProcess
from tests.fakes.openai_server import FakeOpenAI

MASTER = "mk-fuzz-master-key-0123456789abcdef"
AUTH = {"authorization": f"Bearer {MASTER}"}
FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CHAT_PATHS = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
]
PATHS = [
    *CHAT_PATHS,
    "/v1/models",
    "/v1/spend",
    "/health",
    "/ready",
    "/health/live",
    "/health/ready",
    "/admin/keys",
    "/admin/keys/key_x",
    "/admin/models",
    "/admin/requests",
    "/v1/responses/resp_x",
    "/v1/responses/resp_x/input_items",
    "/v1/nowhere",
    "/../etc/passwd",
]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND"]
MESSAGE = {"role": "user", "content": "hi"}
KNOWN = {"model": "gpt-4o", "messages": [MESSAGE], "max_tokens": 4}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    upstream = FakeOpenAI()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def gateway(fake: FakeOpenAI) -> Iterator[GatewayProcess]:
    process = GatewayProcess(
        {
            "OPENAI_API_KEY": "sk-fuzz-provider-key-123",
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "CALCIFER_MASTER_KEY": MASTER,
            "CALCIFER_LOG_LEVEL": "warning",
        }
    )
    yield process
    output = process.stop()
    assert "Traceback" not in output, output[-3000:]
    assert "sk-fuzz-provider-key-123" not in output


@pytest.fixture(scope="module")
def client(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers=AUTH, timeout=30) as session:
        yield session


# Strategies -------------------------------------------------------------------------------------------
texts = st.text(max_size=40) | st.sampled_from(
    ["", "\u0000", "\u001b[0m", "\ud7ff", "模型", "🙂" * 3, "a" * 300]
)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
models = (
    st.sampled_from(
        ["echo4", "gpt-4o", "gpt-4o-mini\n", "\u0100", "claude-sonnet-4-2025999", "no-such", "x" * 5000]
    )
    | texts
)
messages = (
    st.lists(
        st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", ""]) | texts},
            optional={"content": json_values, "tool_calls": json_values, "name": json_values},
        ),
        max_size=3,
    )
    | json_values
)
FIELDS = [
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "response_format",
    "n",
    "stop",
    "user",
    "metadata",
    "system",
    "input",
    "prompt",
    "instructions",
    "previous_response_id",
    "store",
    "thinking",
    "reasoning_effort",
    "stop_sequences",
]
extra_fields = st.dictionaries(
    st.sampled_from(FIELDS), json_values | st.sampled_from([True, 0, 1, -1]), max_size=4
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": draw(models), "messages": draw(messages), "max_tokens": 4}
    body.update(draw(extra_fields))
    if draw(st.booleans()):
        body["model"] = draw(st.sampled_from(["echo4", "gpt-4o"]))  # often routable, to reach providers
    return body


def _field_value(raw: bytes) -> bytes:
    """Bytes an HTTP/1.1 header field value may hold (visible ASCII, spaces inside, obs-text): what
    reaches the gateway at all; other bytes are the HTTP parser's to refuse."""
    return bytes(c for c in raw if c >= 0x20 and c != 0x7F).strip(b" ")


header_values = st.binary(max_size=60).map(_field_value) | st.sampled_from(
    [
        b"max-age=\xb2",
        b"max-age=99999999999999999999999",
        b"no-cache, no-store",
        b"on",
        b"refresh",
        b"\xff\xfe",
    ]
)
header_names = st.sampled_from(
    [
        "cache-control",
        "x-calcifer-cache",
        "x-request-id",
        "anthropic-version",
        "anthropic-beta",
        "content-encoding",
        "x-api-key",
        "accept",
        "origin",
        "content-type",
    ]
)


def encoded(body: object) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def nested_body(depth: int) -> bytes:
    opening = "".join('{"k":' if i % 2 else "[" for i in range(depth))
    closing = "".join("}" if i % 2 else "]" for i in reversed(range(depth)))
    return (
        '{"model":"gpt-4o","max_tokens":4,"messages":[{"role":"user","content":"hi"}],"metadata":'
        + opening
        + "1"
        + closing
        + "}"
    ).encode()


# The invariant ----------------------------------------------------------------------------------------
def upstream_caused(response: httpx.Response) -> bool:
    """A 5xx the gateway passes on from an upstream (or a provider it has no credential for)."""
    if response.status_code == 503 and response.headers.get("x-should-retry") == "false":
        return True
    return response.status_code in (502, 504) and "x-calcifer-provider" in response.headers


def check(response: httpx.Response, path: str, method: str) -> None:
    status = response.status_code
    assert response.headers.get("x-request-id"), (method, path, status)
    assert status < 500 or upstream_caused(response), (method, path, status, response.text[:500])
    if status < 400 or method == "HEAD" or (method == "OPTIONS" and status == 400):
        return
    body = response.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
    else:
        assert set(body["error"]) >= {"message", "type", "code"}, body
    assert "Traceback" not in response.text


# The properties ---------------------------------------------------------------------------------------
@FUZZ
@given(
    path=st.sampled_from(CHAT_PATHS),
    body=chat_bodies(),
    headers=st.lists(st.tuples(header_names, header_values), max_size=3),
)
def test_chat_bodies_and_headers(
    client: httpx.Client, path: str, body: dict[str, Any], headers: list[tuple[str, bytes]]
) -> None:
    sent = [(name.encode(), value) for name, value in headers]
    check(
        client.post(path, content=encoded(body), headers=[(b"content-type", b"application/json"), *sent]),
        path,
        "POST",
    )


@FUZZ
@given(path=st.sampled_from(CHAT_PATHS), raw=st.binary(max_size=200) | json_values.map(encoded))
def test_raw_bytes_and_any_json(client: httpx.Client, path: str, raw: bytes) -> None:
    check(client.post(path, content=raw, headers={"content-type": "application/json"}), path, "POST")


@FUZZ
@given(path=st.sampled_from(CHAT_PATHS), depth=st.integers(0, 1100))
def test_nesting_depth(client: httpx.Client, path: str, depth: int) -> None:
    check(
        client.post(path, content=nested_body(depth), headers={"content-type": "application/json"}),
        path,
        "POST",
    )


@FUZZ
@given(method=st.sampled_from(METHODS), path=st.sampled_from(PATHS), query=st.text(max_size=40))
def test_every_method_on_every_route_with_any_query(
    client: httpx.Client, method: str, path: str, query: str
) -> None:
    url = httpx.URL(path, params={"since": query, "until": query, "group_by": query, "limit": query})
    check(client.request(method, url), path, method)


@FUZZ
@given(
    method=st.sampled_from(["POST", "PATCH"]),
    payload=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "models",
                "budget",
                "budget_period",
                "rpm",
                "tpm",
                "metadata",
                "expires_at",
                "team_id",
                "user_id",
                "role",
            ]
        ),
        json_values,
        max_size=5,
    ),
)
def test_admin_payloads(client: httpx.Client, method: str, payload: dict[str, Any]) -> None:
    path = "/admin/keys" if method == "POST" else "/admin/keys/key_does_not_exist"
    check(
        client.request(method, path, content=encoded(payload), headers={"content-type": "application/json"}),
        path,
        method,
    )


def test_the_gateway_is_healthy_and_exact_afterwards(client: httpx.Client) -> None:
    """Runs after the properties (file order): the same known request costs what it cost at first."""
    assert client.get("/health").status_code == 200
    first = client.post("/v1/chat/completions", json=KNOWN)
    again = client.post("/v1/chat/completions", json=KNOWN)
    assert first.status_code == again.status_code == 200
    cost = json.loads(first.content, parse_float=Decimal)["usage"]["cost"]
    assert cost > 0 and json.loads(again.content, parse_float=Decimal)["usage"]["cost"] == cost
    assert client.get("/v1/spend").status_code == 200
