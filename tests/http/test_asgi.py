"""The flat ASGI dispatcher: routing, errors, CORS, request ids, finishers and the lifespan protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx2 as httpx
import pytest
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Message
from tests.fakes.threaded import AsgiServer

from calcifer.domain.errors import InvalidRequest
from calcifer.http.asgi import GatewayApp, Route
from calcifer.http.auth import Authenticator
from calcifer.http.cors import Cors
from calcifer.http.errors import error_response
from calcifer.http.middleware import RequestFacts


async def hello(request: Request) -> Response:
    return JSONResponse(
        {"id": request.path_params.get("item_id"), "key": request.scope.get("calcifer.key_id")}
    )


async def explode(request: Request) -> Response:
    raise RuntimeError("secret internals: sk-live-should-not-leak")


async def refuse(request: Request) -> Response:
    raise InvalidRequest("nope", param="x")


async def bad_header(request: Request) -> Response:
    return Response(b"{}", headers={"x-echo": "line\nbreak"})  # a head the server refuses to send


async def upload(request: Request) -> Response:
    await request.body()  # a client that leaves mid-upload raises ClientDisconnect here
    return Response(b"{}")


def build(finished: list[RequestFacts], lifespan_error: Exception | None = None) -> GatewayApp:
    @contextlib.asynccontextmanager
    async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
        if lifespan_error is not None:
            raise lifespan_error
        app.state.started = True
        yield
        app.state.stopped = True

    return GatewayApp(
        [
            Route("/items/{item_id}", hello, methods=["GET"]),
            Route("/hello", hello, methods=["GET", "POST"]),
            Route("/explode", explode),
            Route("/refuse", refuse),
            Route("/bad-header", bad_header),
            Route("/upload", upload, methods=["POST"]),
            Route("/health", hello),
        ],
        state=State(),
        lifespan=lifespan,
        authenticator=Authenticator("mk-a-long-enough-master-key-123456", None),
        cors=Cors(
            origins=("https://ok.example",), methods=("GET",), headers=("Authorization",), expose=("x-a",)
        ),
        finishers=[finished.append],
        render_error=lambda _path, error: error_response(error),
    )


@pytest.fixture
def served() -> Iterator[tuple[AsgiServer, list[RequestFacts]]]:
    finished: list[RequestFacts] = []
    server = AsgiServer(build(finished))
    yield server, finished
    server.close()


def wait_for(condition: Callable[[], bool]) -> bool:
    """Finishers run just after the response is sent: give them a moment."""
    deadline = time.monotonic() + 5
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


MASTER = {"Authorization": "Bearer mk-a-long-enough-master-key-123456"}


def test_routes_path_params_methods_and_auth(served: tuple[AsgiServer, list[RequestFacts]]) -> None:
    server, finished = served
    assert httpx.get(server.url + "/items/42", headers=MASTER).json() == {"id": "42", "key": None}
    assert httpx.get(server.url + "/items/42").status_code == 401
    assert httpx.get(server.url + "/health").status_code == 200  # open path
    assert httpx.delete(server.url + "/hello", headers=MASTER).status_code == 405
    assert httpx.get(server.url + "/nowhere", headers=MASTER).status_code == 404
    assert wait_for(lambda: len(finished) == 5)
    assert [f.status for f in finished] == [200, 401, 200, 405, 404]


def test_errors_are_clean_json(served: tuple[AsgiServer, list[RequestFacts]]) -> None:
    server, finished = served
    crashed = httpx.get(server.url + "/explode", headers=MASTER)
    assert crashed.status_code == 500
    assert crashed.json()["error"]["type"] == "server_error"
    assert "sk-live" not in crashed.text and "Traceback" not in crashed.text
    refused = httpx.get(server.url + "/refuse", headers=MASTER)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "x"
    assert wait_for(lambda: [f.status for f in finished] == [500, 400])


def test_cors_preflight_and_simple_responses(served: tuple[AsgiServer, list[RequestFacts]]) -> None:
    server, _ = served
    preflight = httpx.options(
        server.url + "/hello",
        headers={
            "origin": "https://ok.example",
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ok.example"
    assert (
        httpx.options(
            server.url + "/hello",
            headers={"origin": "https://ok.example", "access-control-request-method": "DELETE"},
        ).status_code
        == 400
    )
    assert (
        httpx.options(
            server.url + "/hello",
            headers={
                "origin": "https://ok.example",
                "access-control-request-method": "GET",
                "access-control-request-headers": "x-other",
            },
        ).status_code
        == 400
    )
    simple = httpx.get(server.url + "/hello", headers={**MASTER, "origin": "https://ok.example"})
    assert simple.headers["access-control-allow-origin"] == "https://ok.example"
    assert simple.headers["access-control-expose-headers"] == "x-a"
    other = httpx.get(server.url + "/hello", headers={**MASTER, "origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


async def test_lifespan_reports_start_up_failure_and_runs_shutdown() -> None:
    async def drive(app: GatewayApp) -> list[Message]:
        sent: list[Message] = []
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> Message:
            return inbox.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        return sent

    good = build([])
    assert [m["type"] for m in await drive(good)] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert good.state.started and good.state.stopped
    failed = await drive(build([], lifespan_error=RuntimeError("database unreachable")))
    assert failed == [{"type": "lifespan.startup.failed", "message": "database unreachable"}]


def test_request_id_is_kept_or_made(served: tuple[AsgiServer, list[RequestFacts]]) -> None:
    server, finished = served
    kept = httpx.get(server.url + "/health", headers={"x-request-id": "req-1"})
    assert kept.headers["x-request-id"] == "req-1"
    assert wait_for(lambda: any(f.request_id == "req-1" for f in finished))
    made = httpx.get(server.url + "/health", headers={"x-request-id": "bad id"})
    assert len(made.headers["x-request-id"]) == 32


def test_admin_paths_need_the_master_key() -> None:
    finished: list[RequestFacts] = []
    app = build(finished)
    app._exact["/admin/x"] = {"GET": hello}  # a route under /admin, for this test only
    server = AsgiServer(app)
    try:
        assert httpx.get(server.url + "/admin/x", headers=MASTER).status_code == 200
        assert httpx.get(server.url + "/admin/x", headers={"x-api-key": "sk-calc-unknown"}).status_code == 401
    finally:
        server.close()


def test_a_response_the_server_refuses_becomes_a_clean_500_on_a_live_connection(
    served: tuple[AsgiServer, list[RequestFacts]], caplog: pytest.LogCaptureFixture
) -> None:
    server, finished = served
    with httpx.Client(base_url=server.url, headers=MASTER) as client:
        refused = client.get("/bad-header", headers={"x-request-id": "req-bad-1"})
        assert refused.status_code == 500 and refused.headers["x-request-id"] == "req-bad-1"
        assert refused.json()["error"]["code"] == "internal_error"
        assert client.get("/hello").status_code == 200  # the same connection answers on
    assert wait_for(lambda: [f.status for f in finished] == [500, 200])
    logged = [r.getMessage() for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(logged) == 1 and "req-bad-1" in logged[0] and "/bad-header" in logged[0]


def test_the_log_line_of_an_unexpected_error_names_the_request_and_place_not_the_message(
    served: tuple[AsgiServer, list[RequestFacts]], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = served
    crashed = httpx.get(server.url + "/explode", headers={**MASTER, "x-request-id": "req-42"})
    assert crashed.status_code == 500 and crashed.headers["x-request-id"] == "req-42"
    logged = [r.getMessage() for r in caplog.records if "unhandled error" in r.getMessage()]
    assert len(logged) == 1 and "req-42" in logged[0] and "RuntimeError" in logged[0]
    assert "in explode" in logged[0] and "sk-live" not in logged[0]


def test_unexpected_errors_take_the_routes_shape() -> None:
    from calcifer.app import _render_error
    from calcifer.http.errors import InternalError

    anthropic = _render_error("/v1/messages", InternalError())
    assert anthropic.status_code == 500
    assert json.loads(bytes(anthropic.body)) == {
        "type": "error",
        "error": {"type": "api_error", "message": "The gateway failed to handle this request."},
    }
    openai = json.loads(bytes(_render_error("/v1/chat/completions", InternalError()).body))
    assert openai["error"]["type"] == "server_error" and openai["error"]["code"] == "internal_error"


def test_a_client_gone_mid_upload_is_499(
    served: tuple[AsgiServer, list[RequestFacts]], caplog: pytest.LogCaptureFixture
) -> None:
    server, finished = served
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer mk-a-long-enough-master-key-123456"
            b"\r\nContent-Length: 100\r\n\r\n{"
        )
        time.sleep(0.2)  # the handler is waiting for the rest of the body when the client leaves
    assert wait_for(lambda: [f.status for f in finished] == [499])
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]


def test_head_is_served_by_get_and_a_405_says_what_is_allowed(
    served: tuple[AsgiServer, list[RequestFacts]],
) -> None:
    server, _ = served
    head = httpx.head(server.url + "/items/7", headers=MASTER)
    assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
    assert httpx.delete(server.url + "/items/7", headers=MASTER).headers["allow"] == "GET, HEAD"
    assert httpx.put(server.url + "/hello", headers=MASTER).headers["allow"] == "GET, POST, HEAD"
    assert httpx.get(server.url + "/upload", headers=MASTER).headers["allow"] == "POST"


async def chunks(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        yield b"one"
        yield b"two"

    return StreamingResponse(body())


@pytest.mark.parametrize(("path", "body_messages"), [("/hello", 1), ("/chunks", 3)])
async def test_recorders_run_just_before_the_last_body_message_the_finishers_after_it(
    path: str, body_messages: int
) -> None:
    sent: list[Message] = []
    when: dict[str, tuple[int, int]] = {}

    def seen(name: str) -> Callable[[RequestFacts], None]:
        def note(facts: RequestFacts) -> None:
            when.setdefault(name, (len(sent), facts.status))

        return note

    app = GatewayApp(
        [Route("/hello", hello), Route("/chunks", chunks)],
        state=State(),
        lifespan=lambda _app: contextlib.nullcontext(),
        authenticator=Authenticator(None, None),
        cors=Cors(origins=(), methods=("GET",), headers=(), expose=()),
        finishers=[seen("finisher")],
        recorders=[seen("recorder")],
        render_error=lambda _path, error: error_response(error),
    )
    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}

    requested: list[bool] = []

    async def receive() -> Message:
        if requested:
            await asyncio.Event().wait()  # the client stays until the response is over
        requested.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * body_messages
    assert not sent[-1].get("more_body", False)
    assert when == {"recorder": (len(sent) - 1, 200), "finisher": (len(sent), 200)}
