"""`/v1/responses` for an OpenAI model, with the official `openai` SDK: the request reaches OpenAI as
the client sent it, the answer and its stream come back as OpenAI's bytes with `usage.cost` added, and
OpenAI's own store answers `retrieve`, `input_items` and `delete`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2 as httpx
import openai
import orjson
import pytest

from tests.fakes.openai_responses import events, function_call, response
from tests.fakes.openai_server import Script, error_body
from tests.fakes.threaded import AsgiServer
from tests.responses.conftest import FUNCTION, GPT, Fakes, cost, sse_events, usage_cost, valid, valid_stream


def test_the_request_passes_as_sent_and_the_answer_gets_its_cost(
    client: openai.OpenAI, gateway: AsgiServer, fakes: Fakes
) -> None:
    extra: Any = {
        "client_metadata": {"thread_id": "t-1"},
        "prompt_cache_key": "session-1",
        "include": ["reasoning.encrypted_content"],
        "some_future_field": {"x": [1, 2]},
    }
    items: Any = [
        {
            "type": "message",
            "id": "msg_client1",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
        }
    ]
    raw = client.responses.with_raw_response.create(
        model=GPT,
        input=items,
        instructions="Be brief.",
        tools=[FUNCTION, {"type": "web_search"}],
        reasoning={"summary": "auto"},
        store=False,
        extra_body=extra,
    )
    answer = raw.parse()
    assert answer.output_text == "Hello! How can I help?"
    expected = cost(GPT, 20, 5)
    assert answer.usage is not None and usage_cost(answer.usage) == expected
    assert raw.headers["x-calcifer-cost"] == format(expected, "f")
    assert raw.headers["x-calcifer-provider"] == "openai"
    valid("Response", orjson.loads(raw.http_response.content))
    sent = fakes.openai.requests[-1]
    assert fakes.openai.paths[-1] == "/v1/responses"
    assert sent["tools"][1] == {"type": "web_search"} and sent["store"] is False
    assert sent["input"][0]["id"] == "msg_client1" and sent["reasoning"] == {"summary": "auto"}
    for name, value in extra.items():
        assert sent[name] == value
    assert fakes.openai.headers[-1]["Authorization"] == "Bearer sk-test-provider-key-123"


def test_the_stream_is_relayed_as_sent_with_the_cost_on_completion(gateway: AsgiServer, fakes: Fakes) -> None:
    final = response(GPT, usage={**response(GPT)["usage"], "input_tokens": 100, "output_tokens": 40})
    fakes.openai.script(Script(body=final))
    with httpx.stream(
        "POST", gateway.url + "/v1/responses", json={"model": GPT, "input": "Hi", "stream": True}
    ) as reply:
        body = reply.read()
    relayed = sse_events(body)
    valid_stream(relayed)
    upstream = events(final)
    assert [e["type"] for e in relayed] == [e["type"] for e in upstream]
    assert relayed[:-1] == upstream[:-1]  # every event but the last, unchanged
    completed = relayed[-1]["response"]
    assert Decimal(str(completed["usage"].pop("cost"))) == cost(GPT, 100, 40)
    assert completed == final


def test_the_sdk_stream_sees_the_events_and_the_cost(client: openai.OpenAI) -> None:
    with client.responses.stream(model=GPT, input="Hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == "Hello! How can I help?"
    assert final.usage is not None and usage_cost(final.usage) == cost(GPT, 20, 5)


def test_a_function_call_round_trip_chains_at_openai(client: openai.OpenAI, fakes: Fakes) -> None:
    call = function_call("get_weather", '{"city":"Paris"}')
    fakes.openai.script(Script(body=response(GPT, output=[call], response_id="resp_call1")))
    first = client.responses.create(model=GPT, input="Weather in Paris?", tools=[FUNCTION])
    assert first.id == "resp_call1"
    assert [item.type for item in first.output] == ["function_call"]
    second = client.responses.create(
        model=GPT,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_fake1", "output": "18C, sunny"}],
        tools=[FUNCTION],
    )
    assert second.output_text == "Hello! How can I help?"
    sent = fakes.openai.requests[-1]
    assert sent["previous_response_id"] == "resp_call1"  # OpenAI keeps the chain itself
    assert sent["input"] == [
        {"type": "function_call_output", "call_id": "call_fake1", "output": "18C, sunny"}
    ]


def test_retrieve_input_items_and_delete_reach_openais_store(client: openai.OpenAI, fakes: Fakes) -> None:
    made = client.responses.create(model=GPT, input="Keep this")
    fetched = client.responses.retrieve(made.id)
    assert fetched.id == made.id and fetched.output_text == made.output_text
    items = client.responses.input_items.list(made.id)
    assert [item.type for item in items.data] == ["message"]
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    assert fakes.openai.paths[-4:] == [
        f"/v1/responses/{made.id}",
        f"/v1/responses/{made.id}/input_items",
        f"/v1/responses/{made.id}",
        f"/v1/responses/{made.id}",
    ]


def test_an_upstream_error_keeps_its_status_and_message(client: openai.OpenAI, fakes: Fakes) -> None:
    bad = error_body("Invalid value for 'reasoning.effort'.", "invalid_request_error", "invalid_value")
    fakes.openai.script(Script(status=400, body=bad))
    with pytest.raises(openai.BadRequestError) as caught:
        effort: Any = {"effort": "bogus"}
        client.responses.create(model=GPT, input="Hi", reasoning=effort)
    assert "reasoning.effort" in str(caught.value)


def test_a_stream_cut_by_the_upstream_ends_with_response_failed(gateway: AsgiServer, fakes: Fakes) -> None:
    fakes.openai.script(Script(cut_after=4))
    with httpx.stream(
        "POST", gateway.url + "/v1/responses", json={"model": GPT, "input": "Hi", "stream": True}
    ) as reply:
        relayed = sse_events(reply.read())
    valid_stream(relayed)
    assert relayed[-1]["type"] == "response.failed"
    failed = relayed[-1]["response"]
    assert failed["id"] == "resp_fake1" and failed["status"] == "failed"
    assert failed["error"]["code"] == "server_error"


def test_a_budget_counts_native_responses_events_that_deliver_output() -> None:
    from calcifer.domain.types import StreamChunk
    from calcifer.http.exchange import _OUTPUT

    delivers = _OUTPUT["openai.responses"]
    assert delivers(StreamChunk({"type": "response.output_text.delta", "delta": "x"}))
    assert delivers(StreamChunk({"type": "response.function_call_arguments.delta", "delta": "{"}))
    assert not delivers(StreamChunk({"type": "response.output_text.delta", "delta": ""}))
    assert not delivers(StreamChunk({"type": "response.created", "response": {}}))
