"""An OpenAI-shaped upstream's stream chunks reach the client as the upstream encoded them, byte for
byte, except for what the gateway itself changes: the usage it asked for on the client's behalf, and the
cost on the usage chunk."""

from __future__ import annotations

import httpx2 as httpx
import orjson
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.fakes.threaded import AsgiServer

# Valid JSON an encoder of the gateway's own would write differently: keys in another order, an escaped
# non-ASCII character, an escaped slash.
HEAD = b'{"object":"chat.completion.chunk","id":"c1","created":1,"model":"gpt-4o",'
NULL = b',"usage":null}'
ROLE = HEAD + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]' + NULL
WORD = HEAD + b'"choices":[{"index":0,"delta":{"content":"caf\\u00e9 a\\/b"},"finish_reason":null}]' + NULL
# The same kind of chunk from a server that puts a space after its colons.
SPACED = (
    b'{"object": "chat.completion.chunk", "id": "c1", "created": 1, "model": "gpt-4o", '
    b'"choices": [{"index": 0, "delta": {"content": "!"}, "finish_reason": "stop"}], "usage": null}'
)
USAGE = HEAD + b'"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}}'


def stream_lines(gateway: AsgiServer, include_usage: bool) -> list[bytes]:
    body: dict[str, object] = {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body, timeout=10) as response:
        assert response.status_code == 200
        raw = response.read()
    return [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]


def test_chunks_are_relayed_byte_for_byte_when_the_client_asked_for_usage(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Script(events=[ROLE, WORD, SPACED, USAGE]))
    lines = stream_lines(gateway, include_usage=True)
    assert lines[:3] == [ROLE, WORD, SPACED]
    assert orjson.loads(WORD)["choices"][0]["delta"]["content"] == "café a/b"
    usage = orjson.loads(lines[3])["usage"]  # the usage chunk is the gateway's: it adds the cost
    assert usage["prompt_tokens"] == 10 and usage["completion_tokens"] == 3 and "cost" in usage
    assert lines[4:] == [b"[DONE]"]


def test_a_client_that_did_not_ask_for_usage_gets_no_usage_member_and_no_usage_chunk(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Script(events=[ROLE, WORD, SPACED, USAGE]))
    lines = stream_lines(gateway, include_usage=False)
    assert lines[:2] == [ROLE[: -len(NULL)] + b"}", WORD[: -len(NULL)] + b"}"]  # otherwise untouched
    spaced = orjson.loads(lines[2])  # not in OpenAI's compact form: decoded, changed, encoded again
    assert "usage" not in spaced and spaced["choices"][0]["finish_reason"] == "stop"
    assert lines[3:] == [b"[DONE]"]


def test_an_event_split_over_several_data_lines_reaches_the_client_as_one_valid_line(
    gateway: AsgiServer, fake_openai: FakeOpenAI
) -> None:
    split = WORD.replace(b',"model"', b'\ndata: ,"model"')  # one event, two `data:` lines
    fake_openai.script(Script(events=[ROLE, split, USAGE]))
    lines = stream_lines(gateway, include_usage=True)
    assert orjson.loads(lines[1]) == orjson.loads(WORD)
    assert len(lines) == 4 and lines[-1] == b"[DONE]"
