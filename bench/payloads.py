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
