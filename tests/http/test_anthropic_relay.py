"""The faithful lane's edge, pure: the client's call as kept, and the cost added to Anthropic's bytes."""

from __future__ import annotations

from decimal import Decimal

import orjson
from starlette.requests import Request

from calcifer.domain.errors import InvalidRequest, UpstreamRejected
from calcifer.domain.types import ANTHROPIC_MESSAGES, ChatResponse, StreamChunk, Usage
from calcifer.http.anthropic_native import error_bytes, event_frame, message_bytes, native_call

COST = Decimal("0.000123")
USAGE = Usage(10, 3)


def request(query: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    return Request(
        {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": query, "headers": headers}
    )


def test_the_call_keeps_the_messages_headers_and_a_plain_query() -> None:
    headers = [
        (b"anthropic-beta", b"a-1"),
        (b"anthropic-beta", b"b-2"),
        (b"anthropic-version", b"2023-06-01"),
        (b"x-api-key", b"secret"),
        (b"x-app", b"cli"),
    ]
    call = native_call(request(b"beta=true", headers), {"model": "m"}, b'{"model":"m"}')
    assert call.api == ANTHROPIC_MESSAGES and call.raw == b'{"model":"m"}' and call.body == {"model": "m"}
    assert call.headers == (("anthropic-version", "2023-06-01"), ("anthropic-beta", "a-1,b-2"))
    assert call.query == "beta=true"
    assert native_call(request(b"a=1 HTTP/1.1\r\nx: y", []), {}, b"{}").query == ""
    assert native_call(request(b"", []), {}, b"{}").headers == ()


def test_the_cost_is_spliced_into_anthropics_bytes() -> None:
    raw = b'{"id":"msg_1","content":[],"usage":{"input_tokens":10,"output_tokens":3}}'
    response = ChatResponse(orjson.loads(raw), USAGE, "anthropic", ANTHROPIC_MESSAGES, raw)
    expected = b'{"id":"msg_1","content":[],"usage":{"cost":0.000123,"input_tokens":10,"output_tokens":3}}'
    assert message_bytes(response, COST) == expected
    cached = ChatResponse(orjson.loads(raw), USAGE, "anthropic", ANTHROPIC_MESSAGES)  # a cache hit
    assert message_bytes(cached, Decimal(0)) == expected.replace(b"0.000123", b"0")


def test_bytes_written_otherwise_are_encoded_again_with_the_cost() -> None:
    spaced = b'{"id": "msg_1", "usage": {"input_tokens": 10}}'
    answer = message_bytes(
        ChatResponse(orjson.loads(spaced), USAGE, api=ANTHROPIC_MESSAGES, raw=spaced), None
    )
    assert orjson.loads(answer) == {"id": "msg_1", "usage": {"cost": None, "input_tokens": 10}}
    twice = b'{"content":[{"type":"tool_use","input":{"usage":{"a":1}}}],"usage":{"output_tokens":3}}'
    answer = message_bytes(ChatResponse(orjson.loads(twice), USAGE, api=ANTHROPIC_MESSAGES, raw=twice), COST)
    assert orjson.loads(answer)["usage"] == {"cost": 0.000123, "output_tokens": 3}
    assert orjson.loads(answer)["content"][0]["input"] == {"usage": {"a": 1}}


def test_stream_events_pass_as_they_came_and_the_priced_one_gets_the_cost() -> None:
    ping = StreamChunk({"type": "ping"}, None, b'event: ping\ndata: {"type":"ping"}\n\n')
    assert event_frame(ping, COST) == ping.raw
    assert event_frame(StreamChunk({"type": "ping"}), COST) == b'event: ping\ndata: {"type":"ping"}\n\n'
    data: dict[str, object] = {"type": "message_delta", "delta": {}, "usage": {}}
    raw = b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{}}\n\n'
    assert event_frame(StreamChunk(data, USAGE, raw), COST) == raw.replace(
        b'"usage":{}', b'"usage":{"cost":0.000123}'
    )
    unpriced = event_frame(StreamChunk({"type": "message_delta"}, USAGE), None)
    assert unpriced == b'event: message_delta\ndata: {"type":"message_delta","usage":{"cost":null}}\n\n'


def test_errors_use_the_upstreams_body_only_for_a_native_call() -> None:
    own = b'{"type":"error","error":{"type":"invalid_request_error","message":"no"},"request_id":"req_1"}'
    rejected = UpstreamRejected("no", status=400)
    assert orjson.loads(error_bytes(rejected)[1]) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "no"},
    }
    rejected.api, rejected.body = ANTHROPIC_MESSAGES, own
    assert error_bytes(rejected) == (400, own)
    status, body = error_bytes(InvalidRequest("model: Field required"))
    assert status == 400 and orjson.loads(body)["error"]["message"] == "model: Field required"
