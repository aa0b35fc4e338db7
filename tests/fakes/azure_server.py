"""A loopback fake of Azure OpenAI chat completions (aiohttp.web, real HTTP, SSE), scripted by the test.

`POST /openai/deployments/{deployment}/chat/completions?api-version=...` with an `api-key` header.
A wrong key, an unknown deployment or a missing api-version get Azure's own error bodies. Without a
script, the fake answers from `tests/fixtures/azure/` (stream replies start with the empty
`prompt_filter_results` chunk, as Azure's do).

The v1 API's Responses routes too: `POST /openai/v1/responses` (`model` = a deployment name, no
api-version) answered with a response object or its event stream, and `GET /openai/v1/responses/{id}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.threaded import serve_on_loopback

FIXTURES = Path(__file__).parent.parent / "fixtures" / "azure"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Received:
    deployment: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    sse: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


class AzureFake:
    def __init__(self, deployments: set[str], api_key: str = "azure-test-key") -> None:
        self.deployments = deployments
        self.api_key = api_key
        self.received: list[Received] = []
        self.script: list[Reply] = []
        self._runner: web.AppRunner | None = None
        self.endpoint = ""
        self.kept: dict[str, Any] = {}  # responses made through the v1 Responses API

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.script.append(Reply(status=status, body=body, headers=headers or {}))

    def stream(self, sse: bytes) -> None:
        self.script.append(Reply(sse=sse))

    async def __aenter__(self) -> AzureFake:
        self._runner, self.endpoint = await serve_on_loopback(self.app())
        return self

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._handle)
        app.router.add_post("/openai/v1/responses", self._responses)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_get("/openai/v1/responses/{id}", self._stored)
        return app

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _received(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        """A deployment call's body, recorded, and Azure's error answer when it must be refused."""
        deployment = request.match_info["deployment"]
        body = await request.json()
        self.received.append(Received(deployment, dict(request.query), dict(request.headers), body))
        if request.headers.get("api-key") != self.api_key:
            return body, web.json_response(fixture("error_bad_key.json"), status=401)
        if "api-version" not in request.query:
            missing = {"error": {"code": "404", "message": "Resource not found"}}
            return body, web.json_response(missing, status=404)
        if deployment not in self.deployments:
            return body, web.json_response(fixture("error_deployment_not_found.json"), status=404)
        return body, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._received(request)
        if refused is not None:
            return refused
        stream = bool(body.get("stream"))
        if self.script:
            reply = self.script.pop(0)
        elif stream:
            reply = Reply(sse=(FIXTURES / "stream.sse").read_bytes())
        else:
            reply = Reply(body=fixture("response.json"))
        if reply.sse is None:
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in reply.sse.split(b"\n\n"):
            if event.strip():
                await response.write(event + b"\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        """Embeddings of a deployment: OpenAI's answer shape, `model` the deployment's model."""
        from tests.fakes.embeddings import openai_answer

        body, refused = await self._received(request)
        return refused or web.json_response(openai_answer(body, model="text-embedding-3-small"))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        from tests.fakes import openai_responses as api

        body = await request.json()
        self.received.append(
            Received(str(body.get("model")), dict(request.query), dict(request.headers), body)
        )
        if request.headers.get("api-key") != self.api_key:
            return web.json_response(fixture("error_bad_key.json"), status=401)
        if body.get("model") not in self.deployments:
            return web.json_response(fixture("error_deployment_not_found.json"), status=404)
        final = api.response(str(body["model"]), request=body, response_id="resp_azure1")
        self.kept[final["id"]] = final
        if not body.get("stream"):
            return web.json_response(final)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in api.events(final):
            await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        await response.write_eof()
        return response

    async def _stored(self, request: web.Request) -> web.Response:
        kept = self.kept.get(request.match_info["id"])
        if kept is None:
            return web.json_response(
                {"error": {"message": "not found", "type": "invalid_request_error"}}, status=404
            )
        return web.json_response(kept)
