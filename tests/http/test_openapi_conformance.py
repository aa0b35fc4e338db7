"""What the OpenAI routes return validates against OpenAI's own OpenAPI schemas."""

from __future__ import annotations

import httpx2 as httpx
import orjson
import pytest
from tests.fakes.openai_server import FakeOpenAI, Script, error_body
from tests.fakes.threaded import AsgiServer
from tests.http.openapi import SPEC, errors

pytestmark = pytest.mark.skipif(not SPEC.exists(), reason=f"OpenAI spec not found at {SPEC}")

MESSAGES = [{"role": "user", "content": "Hello there"}]


def post(gateway: AsgiServer, body: object) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=10)


@pytest.mark.parametrize("model", ["echo4", "gpt-4o"])
def test_chat_completion_matches_the_schema(gateway: AsgiServer, model: str) -> None:
    response = post(gateway, {"model": model, "messages": MESSAGES})
    assert response.status_code == 200
    assert errors("CreateChatCompletionResponse", response.json()) == []


@pytest.mark.parametrize("model", ["echo4", "gpt-4o"])
@pytest.mark.parametrize("include_usage", [True, False])
def test_every_stream_chunk_matches_the_schema(gateway: AsgiServer, model: str, include_usage: bool) -> None:
    body = {
        "model": model,
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": include_usage},
    }
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [orjson.loads(f) for f in frames[:-1]]
    for chunk in chunks:
        assert errors("CreateChatCompletionStreamResponse", chunk) == []
    assert len({c["id"] for c in chunks}) == 1
    usage_chunks = [c for c in chunks if c.get("usage")]
    assert len(usage_chunks) == (1 if include_usage else 0)
    if include_usage:
        assert usage_chunks[0]["choices"] == [] and "cost" in usage_chunks[0]["usage"]


def test_model_list_matches_the_schema(gateway: AsgiServer) -> None:
    response = httpx.get(gateway.url + "/v1/models")
    assert errors("ListModelsResponse", response.json()) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "nope-model", "messages": MESSAGES}, 404),
        ({"messages": MESSAGES}, 400),
        ({"model": "gpt-4o", "messages": []}, 400),
    ],
)
def test_errors_match_the_schema(gateway: AsgiServer, body: object, status: int) -> None:
    response = post(gateway, body)
    assert response.status_code == status
    assert errors("ErrorResponse", response.json()) == []


def test_relayed_upstream_error_matches_the_schema(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Script(status=403, body={"error": {"message": "region not supported"}}))
    response = post(gateway, {"model": "gpt-4o", "messages": MESSAGES})
    assert response.status_code == 403
    assert errors("ErrorResponse", response.json()) == []
    assert response.json()["error"]["message"] == "region not supported"


def test_error_schema_is_really_checked() -> None:
    """Guard: the validator rejects an error missing required keys (so the tests above can fail)."""
    assert errors("ErrorResponse", {"error": {"message": "missing code"}}) != []
    assert errors("ErrorResponse", error_body("m", "t")) == []
