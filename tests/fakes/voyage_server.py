"""A loopback fake of Voyage AI's embeddings API (`POST /v1/embeddings`), with Voyage's own field names:
`output_dimension` (not `dimensions`), `encoding_format` null or `base64` (anything else is a 400), and
a usage of `total_tokens` alone."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.embeddings import inputs, openai_answer

_FIELDS = {
    "input",
    "model",
    "input_type",
    "truncation",
    "output_dimension",
    "output_dtype",
    "encoding_format",
}


class VoyageFake:
    def __init__(self, api_key: str = "pa-voyage-test") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        return app

    async def _embeddings(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"detail": "Provided API key is invalid."}, status=401)
        body = await request.json()
        self.requests.append(body)
        unknown = set(body) - _FIELDS
        if unknown or body.get("encoding_format") not in (None, "base64"):
            return web.json_response(
                {"detail": f"Invalid request: {sorted(unknown) or body['encoding_format']}"}, status=400
            )
        answer = openai_answer({**body, "dimensions": body.get("output_dimension")})
        answer["usage"] = {"total_tokens": sum(len(str(t).split()) for t in inputs(body))}
        return web.json_response(answer)
