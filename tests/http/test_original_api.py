"""The original API at `/v1/completions` (and OpenAI's legacy `prompt` form on the same path)."""

from __future__ import annotations

import httpx2 as httpx
import orjson
from tests.fakes.openai_server import FakeOpenAI, Script, error_body, stream_chunks
from tests.fakes.threaded import AsgiServer
from tests.http.openapi import errors


def post(gateway: AsgiServer, body: object) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/completions", json=body, timeout=10)


def sse(gateway: AsgiServer, body: object) -> list[str]:
    with httpx.stream("POST", gateway.url + "/v1/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_echo_joins_messages_with_newlines_and_counts_words(gateway: AsgiServer) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Test   message here"}]
    answer = post(gateway, {"model": "echo4", "messages": messages}).json()
    assert answer["content"] == "be brief\nTest   message here"
    assert answer["provider"] == "echo" and answer["model"] == "echo4" and answer["finish_reason"] == "stop"
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 5, "cost": 0.0005}
    assert answer["id"]


def test_echo_honours_max_tokens(gateway: AsgiServer) -> None:
    body = {
        "model": "echo4",
        "max_tokens": 2,
        "messages": [{"role": "user", "content": "one two three four"}],
    }
    answer = post(gateway, body).json()
    assert answer["content"] == "one two" and answer["finish_reason"] == "length"
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 2, "cost": 0.0003}


def test_original_stream_shape(gateway: AsgiServer) -> None:
    frames = sse(
        gateway, {"model": "echo4", "stream": True, "messages": [{"role": "user", "content": "Test message"}]}
    )
    assert frames[-1] == "[DONE]"
    events = [orjson.loads(f) for f in frames[:-1]]
    assert "".join(e["content"] for e in events) == "Test message"
    assert events[-1]["finish_reason"] == "stop"
    assert events[-1]["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "cost": 0.0002}
    assert all(set(e) == {"content"} for e in events[:-1])


def test_original_api_through_openai(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    body = {"model": "gpt-4o-mini", "temperature": 0.3, "messages": [{"role": "user", "content": "Hello"}]}
    answer = post(gateway, body).json()
    assert answer["content"] == "Hello! How can I help?" and answer["provider"] == "openai"
    assert fake_openai.requests[-1]["temperature"] == 0.3
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o-mini", ["A", "B"])))
    frames = sse(gateway, {**body, "stream": True})
    events = [orjson.loads(f) for f in frames[:-1]]
    assert [e["content"] for e in events[:-1]] == ["A", "B"]
    assert events[-1]["usage"]["completion_tokens"] == 2 and events[-1]["usage"]["cost"] > 0


def test_original_stream_error_midway_is_an_error_event(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", ["a", "b", "c"]), cut_after=2))
    frames = sse(gateway, {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    assert frames[-1] != "[DONE]"
    assert "error" in orjson.loads(frames[-1])


def test_unpriced_model_reports_null_cost_not_zero(gateway_env: dict[str, str]) -> None:
    from tests.fakes.threaded import AsgiServer as Server

    from calcifer.app import create_app
    from calcifer.config.settings import Settings
    from calcifer.domain.pricing import PricingRegistry
    from calcifer.providers.openai import OpenAIProvider

    settings = Settings.from_env(gateway_env)
    local = OpenAIProvider(
        models=frozenset({"my-local-llama"}),
        api_key=None,
        key_required=False,
        base_url=gateway_env["OPENAI_BASE_URL"],
        name="local",
    )
    server = Server(create_app(settings, providers=[local], pricing=PricingRegistry()))
    try:
        answer = post(
            server, {"model": "my-local-llama", "messages": [{"role": "user", "content": "x"}]}
        ).json()
        assert answer["usage"]["cost"] is None
        assert answer["usage"]["prompt_tokens"] == 12
    finally:
        server.close()


def test_legacy_prompt_form_answers_text_completion(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    answer = post(gateway, {"model": "gpt-4o", "prompt": "Say hi", "max_tokens": 5}).json()
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == "Hello! How can I help?"
    assert answer["usage"]["cost"] > 0
    assert fake_openai.requests[-1]["messages"] == [{"role": "user", "content": "Say hi"}]
    assert "prompt" not in fake_openai.requests[-1]
    schema_view = {**answer, "usage": {k: v for k, v in answer["usage"].items() if k != "cost"}}
    assert errors("CreateCompletionResponse", schema_view) == []


def test_legacy_prompt_stream(gateway: AsgiServer) -> None:
    frames = sse(gateway, {"model": "echo4", "prompt": ["alpha beta"], "stream": True})
    assert frames[-1] == "[DONE]"
    events = [orjson.loads(f) for f in frames[:-1]]
    assert "".join(e["choices"][0]["text"] for e in events) == "alpha beta"
    assert events[-1]["usage"]["cost"] == 0.0002
    # OpenAI's legacy stream sends `finish_reason: null` until the end, which its response schema
    # (written for whole responses) does not allow; the final chunk must match it exactly.
    final = {**events[-1], "usage": {k: v for k, v in events[-1]["usage"].items() if k != "cost"}}
    assert errors("CreateCompletionResponse", final) == []


def test_legacy_prompt_must_be_text(gateway: AsgiServer) -> None:
    response = post(gateway, {"model": "echo4", "prompt": [1, 2, 3]})
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"


def test_upstream_error_on_original_api(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Script(status=404, body=error_body("The model does not exist", "invalid_request_error"))
    )
    response = post(gateway, {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    assert response.status_code == 404 and "does not exist" in response.json()["error"]["message"]
