"""A loopback fake of the Bedrock runtime API that checks what AWS checks.

`POST /model/{modelId}/converse`, `converse-stream`, `invoke` and `invoke-with-response-stream`. Every
request's SigV4 signature is recomputed here from AWS's documented algorithm (canonical request with
each path segment URI-encoded again, string to sign, HMAC-SHA256 key derivation), written without
botocore, and compared with the one sent: an unknown or revoked access key, a missing or wrong session
token, a scope of another region or service, or a signature that does not match gets AWS's 403. Streams
are written in AWS's binary event-stream framing (prelude, headers, payload, CRC32s), encoded here too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bedrock"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC32), string headers, payload,
    CRC32 of everything before it."""
    encoded = b"".join(
        len(name).to_bytes(1, "big")
        + name.encode()
        + b"\x07"
        + len(value.encode()).to_bytes(2, "big")
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(encoded).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + encoded + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def expected_signature(
    secret: str,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    signed: str,
    body: bytes,
    scope: str,
) -> str:
    """SigV4 as AWS documents it (IAM User Guide, "Create a signed AWS API request")."""
    canonical_uri = "/".join(quote(segment, safe="-_.~") for segment in raw_path.split("/"))
    pairs = sorted(tuple(p.split("=", 1)) if "=" in p else (p, "") for p in query.split("&") if p)
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    names = signed.split(";")
    canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
    canonical = "\n".join(
        [method, canonical_uri, canonical_query, canonical_headers, signed, hashlib.sha256(body).hexdigest()]
    )
    amz_date = headers["x-amz-date"]
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Received:
    model: str
    action: str
    headers: dict[str, str]
    body: dict[str, Any]
    access_key: str


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    events: list[bytes] | None = None


@dataclass
class BedrockFake:
    region: str = "us-east-1"
    # access key -> (secret key, session token or None): the credentials AWS would accept now
    credentials: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused request was refused
    script: list[Reply] = field(default_factory=list)
    embed_pause: float = 0.0  # how long a Titan embedding takes (so calls overlap)
    in_flight: int = 0
    most_in_flight: int = 0  # the most Titan embedding calls answered at once

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/model/{model}/{action}", self._handle)
        return app

    def _verify(self, request: web.Request, body: bytes) -> str | None:
        """Why AWS would refuse this request's signature, or None when it is valid."""
        found = _AUTH.match(request.headers.get("Authorization", ""))
        if found is None:
            return "Missing Authentication Token"
        key, region, service = found["key"], found["region"], found["service"]
        if key not in self.credentials:
            return "The security token included in the request is invalid."
        if region != self.region:
            return f"Credential should be scoped to a valid region, not '{region}'."
        if service != "bedrock":
            return f"Credential should be scoped to correct service: 'bedrock', not '{service}'."
        secret, token = self.credentials[key]
        if token is not None and request.headers.get("X-Amz-Security-Token") != token:
            return "The security token included in the request is invalid."
        headers = {name.lower(): value for name, value in request.headers.items()}
        signed = found["signed"]
        if "host" not in signed.split(";") or any(n not in headers for n in signed.split(";")):
            return "The request signature we calculated does not match the signature you provided."
        path = request.raw_path.split("?", 1)[0]
        scope = f"{found['date']}/{region}/{service}/aws4_request"
        wanted = expected_signature(
            secret, request.method, path, request.query_string, headers, signed, body, scope
        )
        if not hmac.compare_digest(wanted, found["signature"]):
            return "The request signature we calculated does not match the signature you provided."
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        problem = self._verify(request, raw)
        if problem is not None:
            self.refused.append(problem)
            kind = "UnrecognizedClientException" if "token" in problem else "InvalidSignatureException"
            return web.json_response({"message": problem}, status=403, headers={"x-amzn-ErrorType": kind})
        body = json.loads(raw)
        model, action = request.match_info["model"], request.match_info["action"]
        key = _AUTH.match(request.headers["Authorization"])["key"]  # type: ignore[index]
        self.received.append(Received(model, action, dict(request.headers), body, key))
        reply = self.script.pop(0) if self.script else self._default(action, body)
        if action == "invoke" and not reply.body and ".titan-embed" in model:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            await asyncio.sleep(self.embed_pause)
            self.in_flight -= 1
            vector = [float(len(body["inputText"])), float(body.get("dimensions", 3))]
            count = len(body["inputText"].split())
            return web.json_response({"embedding": vector, "inputTextTokenCount": count})
        if action == "invoke" and not reply.body and "cohere.embed" in model:
            vectors = [[float(len(t)), 0.5] for t in body["texts"]]
            words = sum(len(t.split()) for t in body["texts"])
            headers = {"X-Amzn-Bedrock-Input-Token-Count": str(words)}
            return web.json_response(
                {"embeddings": vectors, "id": "e1", "response_type": "embeddings_floats"}, headers=headers
            )
        if reply.events is None:
            return web.json_response(reply.body, status=reply.status)
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        for message in reply.events:
            await response.write(message)
        await response.write_eof()
        return response

    def _default(self, action: str, body: dict[str, Any]) -> Reply:
        if action == "converse":
            return Reply(body=fixture("converse_text.json"))
        if action == "converse-stream":
            return Reply(events=[event(k, p) for k, p in fixture("converse_stream_tool_use.json")])
        if action == "invoke":
            embedding = (
                ".titan-embed" in str(body.get("inputText", "")) or "inputText" in body or "texts" in body
            )
            return Reply(body=None if embedding else fixture("invoke_claude.json"))
        return Reply(events=[chunk(e) for e in claude_events()])


def chunk(anthropic_event: dict[str, Any]) -> bytes:
    """An InvokeModelWithResponseStream `chunk` event carrying one of the model's own events."""
    return event("chunk", {"bytes": base64.b64encode(json.dumps(anthropic_event).encode()).decode()})


def claude_events() -> list[dict[str, Any]]:
    """Claude's Messages stream for a short text answer, as Bedrock relays it."""
    message = fixture("invoke_claude.json") | {"content": [], "stop_reason": None}
    message["usage"] = {"input_tokens": 12, "output_tokens": 1}
    return [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello!"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 12},
        },
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 12},
        },
    ]
