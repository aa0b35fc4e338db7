"""The bytes the fake upstream answers with and the bodies the load generators send.

Everything is built once, at import, so the upstream does no per-request work beyond writing bytes.
"""

from __future__ import annotations

import orjson

MODEL = "gpt-4o-mini"  # a model every Calcifer build routes to OpenAI
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
STREAM_EVENTS = 24  # role chunk + 20 content chunks + finish chunk + usage chunk + [DONE]
PACE_SECONDS = 0.010  # the paced stream's gap between events
DELAY_SECONDS = 0.100  # the delayed JSON answer's fixed wait
CREATED = 1_732_700_000
_ID = "chatcmpl-bench0000000000000000000000"
_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 20,
    "total_tokens": 32,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
_WORDS = [f" word{i}" for i in range(20)]

COMPLETION: bytes = orjson.dumps(
    {
        "id": _ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(_WORDS).strip(), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
    }
)


def _chunk(
    delta: dict[str, object], finish: str | None, usage: object = None, with_choice: bool = True
) -> bytes:
    body: dict[str, object] = {
        "id": _ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": UPSTREAM_MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if with_choice
        else [],
        "usage": usage,
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


def _stream_events() -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": "", "refusal": None}, None)]
    events += [_chunk({"content": word}, None) for word in _WORDS]
    events.append(_chunk({}, "stop"))
    events.append(_chunk({}, None, _USAGE, with_choice=False))
    events.append(b"data: [DONE]\n\n")
    assert len(events) == STREAM_EVENTS
    return events


EVENTS: list[bytes] = _stream_events()
STREAM: bytes = b"".join(EVENTS)

_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Write twenty words about benchmarks."},
]
REQUEST: bytes = orjson.dumps({"model": MODEL, "messages": _MESSAGES, "max_tokens": 64})
STREAM_REQUEST: bytes = orjson.dumps(
    {"model": MODEL, "messages": _MESSAGES, "max_tokens": 64, "stream": True}
)

# The Responses API: OpenAI's answer to `/v1/responses` (JSON, and its stream of 26 events), and the
# requests sent to it, for an OpenAI model (relayed natively) and for `COMPAT_MODEL` (an
# OpenAI-compatible server in the config file: translated to chat completions).
COMPAT_MODEL = "bench-compat"
_RESPONSE_USAGE = {
    "input_tokens": 12,
    "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 32,
}
_TEXT = "".join(_WORDS).strip()
_ITEM = {
    "id": "msg_bench",
    "type": "message",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": _TEXT, "annotations": [], "logprobs": []}],
}
_RESPONSE: dict[str, object] = {
    "id": "resp_bench",
    "object": "response",
    "created_at": CREATED,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "instructions": "You are a concise assistant.",
    "model": UPSTREAM_MODEL,
    "output": [_ITEM],
    "parallel_tool_calls": True,
    "store": False,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "metadata": {},
    "usage": _RESPONSE_USAGE,
}
RESPONSE: bytes = orjson.dumps(_RESPONSE)


def _response_events() -> list[bytes]:
    started = {k: v for k, v in _RESPONSE.items() if k != "usage"} | {"status": "in_progress", "output": []}
    place = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**_ITEM, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **place, "part": empty},
    ]
    events += [
        {"type": "response.output_text.delta", **place, "delta": word, "logprobs": []} for word in _WORDS
    ]
    events += [
        {"type": "response.output_text.done", **place, "text": _TEXT, "logprobs": []},
        {"type": "response.content_part.done", **place, "part": _ITEM["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": _ITEM},
        {"type": "response.completed", "response": _RESPONSE},
    ]
    return [
        b"event: "
        + str(event["type"]).encode()
        + b"\ndata: "
        + orjson.dumps({**event, "sequence_number": i})
        + b"\n\n"
        for i, event in enumerate(events)
    ]


RESPONSE_EVENTS: list[bytes] = _response_events()
_INPUT = [{"role": "user", "content": "Write twenty words about benchmarks."}]


def responses_request(model: str, stream: bool) -> bytes:
    body = {
        "model": model,
        "instructions": "You are a concise assistant.",
        "input": _INPUT,
        "max_output_tokens": 64,
        "store": False,
    }
    return orjson.dumps(body | {"stream": True} if stream else body)
