"""Bad input gets a clear 4xx in OpenAI's error shape; never a 500 with a trace."""

from __future__ import annotations

import socket
import time

import httpx2 as httpx
import pytest
from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer

OK_MESSAGES = [{"role": "user", "content": "hi"}]


def raw_post(gateway: AsgiServer, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.url + path, content=content, headers={"content-type": "application/json", **headers}
    )


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"], error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"{not json", 400, ("not valid JSON",)),
        (b"\xff\xfe{}", 400, ("not valid JSON",)),
        (b"", 400, ("empty",)),
        (b"[1, 2]", 400, ("JSON object", "array")),
        (b'"text"', 400, ("JSON object", "string")),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, ("model",)),
        (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', 400, ("model", "string")),
        (b'{"model": "echo4"}', 400, ("messages",)),
        (b'{"model": "echo4", "messages": []}', 400, ("at least one",)),
        (b'{"model": "echo4", "messages": "hi"}', 400, ("array",)),
        (b'{"model": "echo4", "messages": [42]}', 400, ("messages[0]", "object")),
        (b'{"model": "echo4", "messages": [{"content": "x"}]}', 400, ("messages[0].role",)),
        (b'{"model": "echo4", "messages": [{"role": 1, "content": "x"}]}', 400, ("role",)),
        (
            b'{"model": "echo4", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            400,
            ("stream",),
        ),
        (
            b'{"model": "echo4", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}',
            400,
            ("max_tokens",),
        ),
        (
            b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}',
            404,
            ("no-such-model",),
        ),
        (b"[" * 5000 + b"]" * 5000, 400, ("nested too deeply",)),
    ],
)
def test_bad_bodies(
    gateway: AsgiServer, path: str, content: bytes, status: int, words: tuple[str, ...]
) -> None:
    assert_error(raw_post(gateway, path, content), status, *words)


def test_body_over_the_limit_is_413(start_gateway: StartGateway, gateway_env: dict[str, str]) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_MAX_BODY_SIZE": "1KiB"})
    big = b'{"model": "echo4", "messages": [{"role": "user", "content": "' + b"x" * 2000 + b'"}]}'
    assert_error(raw_post(gateway, "/v1/chat/completions", big), 413, "limit")

    def chunked() -> object:
        yield big[:600]
        yield big[600:]

    response = httpx.post(gateway.url + "/v1/chat/completions", content=chunked())  # type: ignore[arg-type]
    assert_error(response, 413, "limit")


def test_a_body_slower_than_the_read_timeout_is_408(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    gateway = start_gateway({**gateway_env, "SERVER_READ_TIMEOUT": "400ms"})
    body = b'{"model": "echo4", "messages": [{"role": "user", "content": "hi"}]}'
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + body[:10])  # then nothing more
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"not received within 0.4s" in answer
    assert 0.35 < waited < 2.0
    # A body sent whole (the usual case) is unaffected, on the same gateway.
    assert raw_post(gateway, "/v1/chat/completions", body).status_code == 200


def test_wrong_method_and_unknown_path(gateway: AsgiServer) -> None:
    assert_error(httpx.get(gateway.url + "/v1/chat/completions"), 405, "GET")
    assert_error(httpx.delete(gateway.url + "/v1/models"), 405)
    assert_error(httpx.get(gateway.url + "/v2/nothing"), 404, "/v2/nothing")


def test_request_id_is_taken_or_made(gateway: AsgiServer) -> None:
    mine = httpx.get(gateway.url + "/health", headers={"x-request-id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    made = httpx.get(gateway.url + "/health")
    assert len(made.headers["x-request-id"]) == 32
    unsafe = httpx.get(gateway.url + "/health", headers={"x-request-id": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"


def test_cors_preflight_uses_the_configured_lists(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    gateway = start_gateway(
        {**gateway_env, "CORS_ALLOWED_ORIGINS": "https://app.example", "CORS_ALLOWED_METHODS": "POST"}
    )
    ok = httpx.options(
        gateway.url + "/v1/chat/completions",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    denied = httpx.options(
        gateway.url + "/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert denied.status_code == 400


def test_health_and_ready(gateway: AsgiServer) -> None:
    assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/ready").json()
    assert ready == {
        "status": "ready",
        "providers": {
            "echo": "configured",
            "openai": "configured",
            "anthropic": "not configured",
            "gemini": "not configured",
        },
    }
