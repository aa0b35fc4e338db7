"""The official `openai` SDK, sync and async, streaming and not, through a real gateway server."""

from __future__ import annotations

from decimal import Decimal

import httpx2 as httpx
import openai
import pytest
from tests.conftest import StartGateway
from tests.fakes.openai_server import FakeOpenAI, Script, error_body, stream_chunks
from tests.fakes.threaded import AsgiServer


def client(gateway: AsgiServer, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0, **kw)  # type: ignore[arg-type]


def test_sync_completion_is_priced_and_passes_the_body_through(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    tools = [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    ]
    raw = client(gateway).chat.completions.with_raw_response.create(  # type: ignore[call-overload]
        model="gpt-4o",
        messages=[{"role": "user", "content": "Hello"}],
        tools=tools,
        tool_choice="auto",
        seed=7,
        logit_bias={"50256": -100},
        response_format={"type": "json_object"},
        extra_body={"some_future_field": {"x": [1, 2]}},
    )
    result = raw.parse()
    assert result.choices[0].message.content == "Hello! How can I help?"
    usage = result.usage
    assert usage is not None
    # gpt-4o: $2.50 / 1M input, $10 / 1M output; 12 in + 25 out.
    expected = Decimal(12) * Decimal("2.5") / 10**6 + Decimal(25) * Decimal(10) / 10**6
    assert usage.model_extra is not None
    assert Decimal(str(usage.model_extra["cost"])) == expected
    assert raw.headers["x-calcifer-cost"] == format(expected, "f")
    assert raw.headers["x-calcifer-provider"] == "openai"
    sent = fake_openai.requests[-1]
    assert sent["tools"] == tools and sent["seed"] == 7 and sent["logit_bias"] == {"50256": -100}
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["some_future_field"] == {"x": [1, 2]}
    assert "stream_options" not in sent
    assert fake_openai.headers[-1]["Authorization"] == "Bearer sk-test-provider-key-123"


def test_cached_tokens_are_priced_at_the_cached_rate(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 10,
        "total_tokens": 1010,
        "prompt_tokens_details": {"cached_tokens": 600},
    }
    from tests.fakes.openai_server import completion

    fake_openai.script(Script(body=completion("gpt-4o", usage=usage)))
    result = client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}]
    )
    assert result.usage is not None
    # 400 plain at 2.50, 600 cached at 1.25, 10 out at 10.00 (per 1M)
    expected = (Decimal(400) * Decimal("2.5") + Decimal(600) * Decimal("1.25") + Decimal(100)) / 10**6
    assert Decimal(str(result.usage.model_extra["cost"])) == expected  # type: ignore[index]


def test_stream_forwards_usage_with_cost_only_when_asked(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    sdk = client(gateway)
    chunks = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    expected = (Decimal(10) * Decimal("0.15") + Decimal(3) * Decimal("0.6")) / 10**6
    assert Decimal(str(last.usage.model_extra["cost"])) == expected  # type: ignore[index]
    assert fake_openai.requests[-1]["stream_options"] == {"include_usage": True}

    plain = list(
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(c.choices for c in plain), "the usage chunk must not reach a client that did not ask for it"
    assert all(c.usage is None for c in plain)
    # ...but the gateway still asked upstream for usage, so the stream was priced.
    assert fake_openai.requests[-1]["stream_options"] == {"include_usage": True}


async def test_async_client_streams_and_completes(gateway: AsgiServer) -> None:
    sdk = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)
    result = await sdk.chat.completions.create(
        model="echo4", messages=[{"role": "user", "content": "one two"}]
    )
    assert result.choices[0].message.content == "one two"
    stream = await sdk.chat.completions.create(
        model="echo4",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == "one two three"
    assert pieces[-1].usage is not None and pieces[-1].usage.model_extra["cost"] == 0.0003  # type: ignore[index]
    await sdk.close()


def test_models_list_names_every_routable_model(gateway: AsgiServer) -> None:
    models = {m.id: m.owned_by for m in client(gateway).models.list()}
    assert models["echo4"] == "echo"
    for name in ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "o1", "o3", "o4-mini"):
        assert models[name] == "openai"


def test_upstream_4xx_reaches_the_client_unretried(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Script(status=400, body=error_body("Invalid 'messages'", "invalid_request_error", "bad"))
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 400
    assert "Invalid 'messages'" in caught.value.message
    assert len(fake_openai.requests) == 1


def test_429_is_retried_honouring_retry_after_then_succeeds(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    limited = Script(
        status=429, body=error_body("slow down", "rate_limit_error"), headers={"retry-after-ms": "20"}
    )
    fake_openai.script(limited, limited)
    result = client(gateway).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}]
    )
    assert result.choices[0].message.content
    assert len(fake_openai.requests) == 3


def test_429_stays_429_after_retries_with_retry_after(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    limited = Script(
        status=429, body=error_body("slow down", "rate_limit_error"), headers={"retry-after": "0"}
    )
    fake_openai.script(limited, limited, limited)
    with pytest.raises(openai.RateLimitError):
        client(gateway).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert len(fake_openai.requests) == 3  # 1 + OPENAI_MAX_RETRIES=2


def test_long_retry_after_is_passed_back_at_once(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(
        Script(status=429, body=error_body("quota", "rate_limit_error"), headers={"retry-after": "120"})
    )
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "120"
    assert len(fake_openai.requests) == 1


def test_5xx_becomes_502_after_retries(gateway: AsgiServer, fake_openai: FakeOpenAI) -> None:
    broken = Script(status=500, body=error_body("boom", "server_error"), headers={"retry-after-ms": "1"})
    fake_openai.script(broken, broken, broken)
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"
    assert len(fake_openai.requests) == 3


def test_timeout_becomes_504(
    start_gateway: StartGateway, gateway_env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    gateway = start_gateway({**gateway_env, "OPENAI_TIMEOUT": "200ms", "OPENAI_MAX_RETRIES": "0"})
    fake_openai.script(Script(delay=2.0))
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        timeout=10,
    )
    assert response.status_code == 504
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_connection_reset_becomes_502(
    start_gateway: StartGateway, gateway_env: dict[str, str], fake_openai: FakeOpenAI
) -> None:
    gateway = start_gateway({**gateway_env, "OPENAI_MAX_RETRIES": "0"})
    fake_openai.script(Script(reset=True))
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 502


def test_stream_failing_mid_way_ends_with_an_error_event_not_done(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Script(chunks=stream_chunks("gpt-4o", ["a", "b", "c", "d"]), cut_after=3))
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    ) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] != "data: [DONE]"
    assert '"error"' in lines[-1]
    with pytest.raises(openai.APIError):
        fake_openai.script(Script(chunks=stream_chunks("gpt-4o", ["a", "b", "c", "d"]), cut_after=3))
        list(
            client(gateway).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_upstream_error_event_in_stream_is_relayed_as_error(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Script(stream_error=error_body("overloaded", "server_error")))
    with pytest.raises(openai.APIError):
        list(
            client(gateway).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_stream_error_before_first_byte_is_a_proper_http_error(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        Script(
            status=401,
            body=error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        )
    )
    with pytest.raises(openai.AuthenticationError):
        list(
            client(gateway).chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )


def test_provider_key_never_reaches_client_or_logs(
    gateway: AsgiServer, fake_openai: FakeOpenAI, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_openai.script(
        Script(status=500, raw=b"upstream exploded", headers={"retry-after-ms": "1"}),
        Script(status=500, raw=b"upstream exploded", headers={"retry-after-ms": "1"}),
        Script(status=500, raw=b"upstream exploded", headers={"retry-after-ms": "1"}),
    )
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 502
    captured = capfd.readouterr()
    assert "sk-test-provider-key-123" not in response.text + str(response.headers)
    assert "sk-test-provider-key-123" not in captured.out + captured.err
