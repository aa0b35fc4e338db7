"""A loopback fake of Vertex AI and of Google's OAuth token endpoint.

`POST /token` is the token endpoint a service-account JSON names in `token_uri`: it takes the signed
JWT assertion google-auth sends (grant type jwt-bearer), checks its RS256 signature with the service
account's public key, its issuer, audience and expiry, and issues an access token that expires
`token_lifetime` seconds later by the fake's clock. The Vertex routes take only a token it issued and
that has not expired (else Google's 401 UNAUTHENTICATED): Gemini's `generateContent` /
`streamGenerateContent?alt=sse` and Claude's `rawPredict` / `streamRawPredict` (which must carry
`anthropic_version: vertex-2023-10-16` and no `model`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

UNAUTHENTICATED = {
    "error": {
        "code": 401,
        "message": "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        "status": "UNAUTHENTICATED",
    }
}
CLIENT_EMAIL = "calcifer@test-project.iam.gserviceaccount.com"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # the audience Google's endpoint requires


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def service_account(path: Path, token_uri: str) -> rsa.RSAPrivateKey:
    """Write a service-account JSON file (a fresh RSA key) whose token endpoint is `token_uri`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return key


@dataclass
class Received:
    publisher: str
    model: str
    method: str
    query: dict[str, str]
    token: str
    body: dict[str, Any]


@dataclass
class VertexFake:
    public_key: rsa.RSAPublicKey | None = None
    token_lifetime: int = 3600
    now: Callable[[], float] = time.time
    issued: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    base_url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post(
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}",
            self._predict,
        )
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        problem = self._check_assertion(str(form.get("assertion", "")))
        if problem is not None:
            self.refused.append(problem)
            return web.json_response({"error": "invalid_grant", "error_description": problem}, status=400)
        token = f"ya29.fake-{len(self.issued) + 1}"
        self.issued[token] = self.now() + self.token_lifetime
        return web.json_response(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _check_assertion(self, assertion: str) -> str | None:
        try:
            head, payload, signature = assertion.split(".")
            assert self.public_key is not None
            self.public_key.verify(
                _b64(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            claims = json.loads(_b64(payload))
        except Exception as error:  # any malformed or forged assertion is refused, as Google does
            return f"Invalid JWT Signature: {type(error).__name__}"
        if json.loads(_b64(head)).get("alg") != "RS256" or claims.get("iss") != CLIENT_EMAIL:
            return "Invalid JWT: issuer or algorithm"
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or claims.get("exp", 0) < time.time():
            return "Invalid JWT: audience or expiry"
        return None

    def expire(self, token: str) -> None:
        """Revoke a token as if its time were up."""
        self.issued[token] = 0.0

    async def _predict(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or self.issued.get(token, 0.0) <= self.now():
            self.refused.append(token)
            return web.json_response(UNAUTHENTICATED, status=401)
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        publisher = request.match_info["publisher"]
        self.received.append(Received(publisher, model, method, dict(request.query), token, body))
        if publisher == "anthropic":
            if body.get("anthropic_version") != "vertex-2023-10-16" or "model" in body:
                message = "anthropic_version: vertex-2023-10-16 is required, and model goes in the URL"
                return web.json_response(
                    {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}, status=400
                )
            if method == "rawPredict":
                return web.json_response(claude_message(model))
            return await _sse(request, [(e["type"], e) for e in claude_events(model)])
        if method == "predict":
            predictions = [
                {
                    "embeddings": {
                        "values": [float(len(i["content"])), 0.5],
                        "statistics": {"token_count": len(i["content"].split())},
                    }
                }
                for i in body["instances"]
            ]
            return web.json_response({"predictions": predictions})
        if method == "generateContent":
            return web.json_response(gemini_answer(model))
        return await _sse(request, [("", e) for e in gemini_events(model)])


async def _sse(request: web.Request, events: list[tuple[str, dict[str, Any]]]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for name, data in events:
        prefix = f"event: {name}\n" if name else ""
        await response.write(f"{prefix}data: {json.dumps(data)}\n\n".encode())
    await response.write_eof()
    return response


def claude_message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_vrtx_01Ab3tq6bNt2DwVoPDx8zM8H",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello from Vertex!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 8},
    }


def claude_events(model: str) -> list[dict[str, Any]]:
    start = claude_message(model) | {
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 20, "output_tokens": 1},
    }
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hello from Vertex!"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 8},
        },
        {"type": "message_stop"},
    ]


def gemini_answer(model: str) -> dict[str, Any]:
    candidate = {
        "content": {"role": "model", "parts": [{"text": "Hi from Gemini on Vertex"}]},
        "finishReason": "STOP",
        "index": 0,
    }
    usage = {"promptTokenCount": 10, "candidatesTokenCount": 6, "totalTokenCount": 16}
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "vertex-1",
    }


def gemini_events(model: str) -> list[dict[str, Any]]:
    first = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi from "}]}, "index": 0}],
        "modelVersion": model,
    }
    return [
        first,
        gemini_answer(model)
        | {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Gemini"}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ]
        },
    ]
