"""The console reads and changes everything through the gateway's own APIs, called in the process.

`ConsoleApi` sends a request through the gateway's route table as the signed-in identity (so the admin
rule, validation, error shapes and numbers are exactly what a script gets over HTTP) and parses the
JSON answer with exact decimals: money stays `Decimal` from the API to the page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from calcifer.console.render import as_json
from calcifer.http.asgi import GatewayApp
from calcifer.http.auth import Identity


class ApiError(Exception):
    """The API refused: its status and its error message (shown on the page)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ConsoleApi:
    def __init__(self, app: GatewayApp, identity: Identity) -> None:
        self._app = app
        self._identity = identity

    async def get(self, path: str, params: Mapping[str, str | None] | None = None) -> Any:
        return await self._send("GET", path, params)

    async def post(self, path: str, body: object) -> Any:
        return await self._send("POST", path, None, body)

    async def put(self, path: str, body: object) -> Any:
        return await self._send("PUT", path, None, body)

    async def patch(self, path: str, body: object) -> Any:
        return await self._send("PATCH", path, None, body)

    async def delete(self, path: str) -> Any:
        return await self._send("DELETE", path, None)

    async def _send(
        self, method: str, path: str, params: Mapping[str, str | None] | None, body: object = None
    ) -> Any:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        raw = b"" if body is None else as_json(body).encode()
        status, answer = await self._app.call(self._identity, method, path, query, raw)
        parsed = json.loads(answer, parse_float=Decimal) if answer else None
        if status >= 400:
            error = parsed.get("error") if isinstance(parsed, dict) else None
            message = error.get("message") if isinstance(error, dict) else None
            raise ApiError(status, str(message or f"The API answered {status}."))
        return parsed
