"""The faithful Anthropic lane through a real gateway: a Claude model gets the client's own request, and
the client gets Anthropic's own bytes back with `usage.cost` added; a fallback to GPT gets the translation.

The gateway runs on its production assembly (catalogue prices: claude-sonnet-4-6 $3 / $15 per 1M tokens,
gpt-4o $2.50 / $10) in front of loopback fakes of Anthropic and OpenAI, and its ledger is read at the end.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import pytest
from tests.fakes.anthropic_server import (
    API_KEY,
    AnthropicFake,
    compact,
    error_body,
    text_events,
    tool_use_events,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AiohttpServer, AsgiServer

from calcifer.app import create_app
from calcifer.config.settings import Settings

CLAUDE = "claude-sonnet-4-6"
MTOK = Decimal(1_000_000)
BETA = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
CONFIG = """\
routing:
  models:
    claude-sonnet-4-6:
      deployments: [{provider: anthropic}]
      fallbacks: [gpt-4o]
    sonnet:
      deployments: [{provider: anthropic, model: claude-sonnet-4-6}]
"""
# What Claude Code sends, in short: its own key order and spacing, fields the gateway does not know.
REQUEST = {
    "model": CLAUDE,
    "messages": [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "Read notes.txt",
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                }
            ],
        }
    ],
    "system": [{"type": "text", "text": "You are Claude Code."}],
    "tools": [{"name": "Read", "input_schema": {"type": "object"}, "defer_loading": True}],
    "metadata": {"user_id": "dev-7"},
    "max_tokens": 32000,
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
}


@dataclass
class Lane:
    claude: AnthropicFake
    openai: FakeOpenAI
    gateway: AsgiServer
    database: Path

    def post(self, body: object, *, path: str = "/v1/messages?beta=true", **headers: str) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"content-type": "application/json", "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
        return httpx.post(self.gateway.url + path, content=raw, headers={**sent, **headers}, timeout=10)

    def rows(self) -> list[tuple[Any, ...]]:
        self.gateway.close()
        with sqlite3.connect(self.database) as db:
            return db.execute(
                "SELECT model, provider, status, prompt_tokens, completion_tokens, cost, customer, cache_hit"
                " FROM spend WHERE model != '' ORDER BY id"
            ).fetchall()


MASTER = "mk-test-0123456789abcdefghijklmnop"


@pytest.fixture
def lane(tmp_path: Path) -> Iterator[Lane]:
    yield from _lane(tmp_path, {})


@pytest.fixture
def keyed_lane(tmp_path: Path) -> Iterator[Lane]:
    yield from _lane(tmp_path, {"CALCIFER_MASTER_KEY": MASTER})


def _lane(tmp_path: Path, extra: dict[str, str]) -> Iterator[Lane]:
    claude, openai = AnthropicFake(), FakeOpenAI()
    upstream = AiohttpServer(claude.app())
    claude.base_url = upstream.url
    config = tmp_path / "calcifer.yaml"
    config.write_text(CONFIG)
    database = tmp_path / "calcifer.db"
    env = {
        "CALCIFER_DATABASE_URL": f"sqlite:///{database}",
        "CALCIFER_CONFIG": str(config),
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": upstream.url,
        "ANTHROPIC_MAX_RETRIES": "0",
        "OPENAI_API_KEY": "sk-openai-test",
        "OPENAI_BASE_URL": openai.base_url,
        **extra,
    }
    gateway = AsgiServer(create_app(Settings.from_env(env)))
    yield Lane(claude, openai, gateway, database)
    gateway.close()
    upstream.close()
    openai.close()


def pico(cost: Decimal) -> int:
    return int(cost * 10**12)


def test_the_request_goes_up_as_sent_and_the_answer_comes_back_as_anthropics_bytes(lane: Lane) -> None:
    message = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": [
            {"type": "thinking", "thinking": "The user wants the file.", "signature": "EqQBCkYIBRgCKkBs+/=="},
            {"type": "text", "text": "Done."},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 2000,
            "output_tokens": 50,
        },
        "container": None,
    }
    lane.claude.reply(200, message)
    raw = json.dumps(REQUEST, indent=1).encode()  # spacing of its own: it must arrive as is
    answer = lane.post(raw)
    assert answer.status_code == 200, answer.text
    cost = (100 * 3 + 2000 * Decimal("0.30") + 50 * 15) / MTOK
    upstream = compact(message).encode()
    spliced = upstream.replace(b'"usage":{', b'"usage":{"cost":' + format(cost, "f").encode() + b",")
    assert answer.content == spliced  # Anthropic's bytes, `cost` added to `usage`
    assert answer.headers["x-calcifer-cost"] == format(cost, "f")
    sent = lane.claude.received[-1]
    assert sent.raw == raw and sent.query == "beta=true"
    assert (sent.headers["anthropic-beta"], sent.headers["anthropic-version"]) == (BETA, "2023-06-01")
    assert lane.rows() == [(CLAUDE, "anthropic", 200, 2100, 50, pico(cost), "dev-7", 0)]


def test_the_stream_is_relayed_as_anthropics_bytes_with_the_cost_in_its_message_delta(lane: Lane) -> None:
    events = tool_use_events(
        CLAUDE, "Read", {"file_path": "notes.txt"}, thinking="Read it.", signature="Sig/+=", tool_id="toolu_1"
    )
    lane.claude.stream(events)
    answer = lane.post({**REQUEST, "stream": True})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
    cost = (120 * 3 + 40 * 15) / MTOK
    frames = [f"event: {e['type']}\ndata: {compact(e)}\n\n".encode() for e in events]
    delta = next(i for i, e in enumerate(events) if e["type"] == "message_delta")
    frames[delta] = frames[delta].replace(
        b'"usage":{', b'"usage":{"cost":' + format(cost, "f").encode() + b","
    )
    assert answer.content == b"".join(frames)
    assert lane.rows() == [(CLAUDE, "anthropic", 200, 120, 40, pico(cost), "dev-7", 0)]


def test_the_anthropic_sdk_reads_the_relayed_stream_thinking_and_signature_included(lane: Lane) -> None:
    events = tool_use_events(
        CLAUDE, "Read", {"file_path": "a"}, thinking="Hmm.", signature="EqQB+/x=", tool_id="toolu_2"
    )
    lane.claude.stream(events)
    client = anthropic.Anthropic(base_url=lane.gateway.url, api_key="any", max_retries=0)
    with client.messages.stream(
        model=CLAUDE, max_tokens=1000, messages=[{"role": "user", "content": "go"}]
    ) as stream:
        deltas = [e for e in stream if e.type == "message_delta"]
        message = stream.get_final_message()
    thinking, tool = message.content
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == ("Hmm.", "EqQB+/x=")
    assert tool.type == "tool_use" and tool.input == {"file_path": "a"}
    assert deltas[0].usage.model_extra == {"cost": float((120 * 3 + 40 * 15) / MTOK)}


def test_a_renamed_model_is_the_only_change_to_the_body(lane: Lane) -> None:
    answer = lane.post({**REQUEST, "model": "sonnet"})
    assert answer.status_code == 200
    assert lane.claude.received[-1].body == {**REQUEST, "model": CLAUDE}


def test_the_upstreams_refusal_reaches_the_client_unchanged(lane: Lane) -> None:
    refusal = error_body("invalid_request_error", "thinking.budget_tokens: must be less than max_tokens")
    lane.claude.reply(400, refusal)
    answer = lane.post(REQUEST)
    assert (answer.status_code, answer.content) == (400, compact(refusal).encode())
    lane.claude.reply(413, error_body("request_too_large", "Request exceeds the maximum size"))
    streamed = lane.post({**REQUEST, "stream": True})
    assert streamed.status_code == 413 and streamed.json() == error_body(
        "request_too_large", "Request exceeds the maximum size"
    )


def test_only_what_the_gateway_needs_is_checked_the_rest_is_the_upstreams_to_judge(lane: Lane) -> None:
    # No max_tokens, a role the translation would refuse: the gateway passes them on, Anthropic decides.
    odd = {"model": CLAUDE, "messages": [{"role": "tool", "content": "x"}]}
    answer = lane.post(odd)
    assert answer.status_code == 400 and answer.json() == error_body(
        "invalid_request_error", "max_tokens: Field required"
    )
    assert lane.claude.received[-1].body == odd
    missing = lane.post({"messages": []})
    assert missing.status_code == 400 and missing.json()["error"] == {
        "type": "invalid_request_error",
        "message": "model: Field required",
    }
    not_json = lane.post(b"[1, 2]")
    assert not_json.status_code == 400 and not_json.json()["type"] == "error"
    assert len(lane.claude.received) == 1


def test_a_fallback_from_claude_to_gpt_gets_the_translation(lane: Lane) -> None:
    lane.claude.reply(529, error_body("overloaded_error", "Overloaded"))
    answer = lane.post(REQUEST)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-calcifer-provider"] == "openai"
    body = answer.json()
    assert body["type"] == "message" and body["content"] == [
        {"type": "text", "text": "Hello! How can I help?"}
    ]
    sent = lane.openai.requests[-1]
    assert sent["model"] == "gpt-4o" and sent["user"] == "dev-7"
    assert sent["messages"][0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You are Claude Code."}],
    }
    assert "thinking" not in sent and "context_management" not in sent and "reasoning_effort" not in sent


def test_native_answers_are_cached_apart_from_other_apis(lane: Lane) -> None:
    on = {"x-calcifer-cache": "on"}
    first = lane.post(REQUEST, **on)
    again = lane.post({**REQUEST, "metadata": {"user_id": "someone-else"}}, **on)
    assert again.headers["x-calcifer-cache"] == "hit" and again.headers["x-calcifer-cost"] == "0"
    assert again.json() == {**first.json(), "usage": {**first.json()["usage"], "cost": 0}}
    other_beta = lane.post(REQUEST, **on, **{"anthropic-beta": "claude-code-20250219"})
    assert "x-calcifer-cache" not in other_beta.headers
    chat = {"model": CLAUDE, "max_tokens": 32000, "messages": [{"role": "user", "content": "Read notes.txt"}]}
    openai_route = lane.post(chat, path="/v1/chat/completions", **on)
    assert openai_route.status_code == 200 and "x-calcifer-cache" not in openai_route.headers
    assert openai_route.json()["object"] == "chat.completion"
    stream_first = lane.post({**REQUEST, "stream": True}, **on)
    stream_hit = lane.post({**REQUEST, "stream": True}, **on)
    assert stream_hit.headers["x-calcifer-cache"] == "hit"
    assert stream_hit.content.replace(b'"cost":0,', b"") == stream_first.content.replace(
        b'"cost":0.000108,', b""
    )
    assert len(lane.claude.received) == 4


def test_count_tokens_is_forwarded_as_sent_and_estimated_elsewhere(lane: Lane) -> None:
    count = {
        "model": CLAUDE,
        "messages": [{"role": "user", "content": "one two three"}],
        "context_management": {},
    }
    raw = json.dumps(count).encode()
    answer = lane.post(raw, path="/v1/messages/count_tokens?beta=true")
    assert answer.json() == {"input_tokens": 6} and "x-calcifer-estimated" not in answer.headers
    sent = lane.claude.received[-1]
    assert (sent.raw, sent.query, sent.headers["anthropic-beta"]) == (raw, "beta=true", BETA)
    lane.claude.reply(400, error_body("invalid_request_error", "context_management: bad"))
    assert (
        lane.post(raw, path="/v1/messages/count_tokens").json()["error"]["message"]
        == "context_management: bad"
    )
    estimate = lane.post({**count, "model": "gpt-4o"}, path="/v1/messages/count_tokens")
    assert estimate.headers["x-calcifer-estimated"] == "true" and estimate.json()["estimated"] is True
    # gpt-4o's tokenizer: 3 + 3 framing, "user" and "one two three" one token each word.
    assert estimate.json()["input_tokens"] == 3 + 3 + 1 + 3


def test_models_are_listed_in_anthropics_shape_when_the_request_says_anthropic_version(lane: Lane) -> None:
    listed = httpx.get(lane.gateway.url + "/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    assert set(listed) == {"data", "has_more", "first_id", "last_id"} and listed["has_more"] is False
    ids = [m["id"] for m in listed["data"]]
    assert CLAUDE in ids and "gpt-4o" in ids and "sonnet" in ids
    assert (listed["first_id"], listed["last_id"]) == (ids[0], ids[-1])
    entry = next(m for m in listed["data"] if m["id"] == CLAUDE)
    assert entry["type"] == "model" and entry["display_name"] == CLAUDE and entry["created_at"].endswith("Z")
    client = anthropic.Anthropic(base_url=lane.gateway.url, api_key="any", max_retries=0)
    assert CLAUDE in [m.id for m in client.models.list()]
    assert httpx.get(lane.gateway.url + "/v1/models").json()["object"] == "list"


def test_text_stream_ledger_and_user(lane: Lane) -> None:
    lane.claude.stream(text_events(CLAUDE, "Hello", 10, 2))
    assert lane.post({**REQUEST, "stream": True}).status_code == 200
    assert lane.rows() == [(CLAUDE, "anthropic", 200, 10, 2, pico((10 * 3 + 2 * 15) / MTOK), "dev-7", 0)]


def test_a_native_stream_is_cut_at_the_keys_budget_and_its_delivered_output_estimated(
    keyed_lane: Lane,
) -> None:
    created = httpx.post(
        keyed_lane.gateway.url + "/admin/keys",
        json={"name": "dev", "max_budget": 5},
        headers={"Authorization": f"Bearer {MASTER}"},
    ).json()
    start, *rest = text_events(CLAUDE, "one")
    more = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}
        for w in ("two", "three")
    ]
    keyed_lane.claude.stream([start, rest[0], rest[1], *more, *rest[2:]])
    # The reservation allows max_tokens of output: 2 content deltas, each at least a token.
    answer = keyed_lane.post(
        {**REQUEST, "max_tokens": 2, "stream": True}, **{"x-api-key": str(created["key"])}
    )
    frames = answer.content.split(b"\n\n")
    assert [f.split(b"\n")[0] for f in frames if f][-2:] == [b"event: content_block_delta", b"event: error"]
    assert b'"type":"rate_limit_error"' in frames[-2] and b"budget" in frames[-2]
    [(model, _, status, prompt, completion, cost, _, _)] = keyed_lane.rows()
    # Estimated from the text read from upstream, "onetwothree", at 4 characters a token.
    assert (model, status, completion) == (CLAUDE, 429, 3)
    assert prompt > 0 and cost == pico((prompt * 3 + completion * 15) / MTOK)
