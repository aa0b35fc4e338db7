"""What the coding-agent client tests share: loopback fakes of OpenAI, Anthropic and Gemini, each
scripted to answer a tool call first and a final text second (streamed, as the agents ask), a real
`calcifer serve` in front of them, and the ledger rows it wrote. (Context managers, not fixtures: each
client's test module makes its fixtures of them.)"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.process import GatewayProcess
from tests.fakes import openai_responses
from tests.fakes.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI, Script
from tests.fakes.threaded import AiohttpServer

GPT, CLAUDE, GEMINI = "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"
FINAL = "The note says: calcifer-fire"


def skip_or_fail(message: str) -> None:
    """Skip loudly where a client cannot run here; in CI (`CALCIFER_REQUIRE_SERVICES`), fail instead."""
    if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Upstreams:
    openai: FakeOpenAI
    anthropic: AnthropicFake
    gemini: GeminiFake

    def env(self) -> dict[str, str]:
        return {
            "OPENAI_API_KEY": "sk-test-provider-key-123",
            "OPENAI_BASE_URL": self.openai.base_url,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": self.anthropic.base_url,
            "GEMINI_API_KEY": self.gemini.api_key,
            "GEMINI_BASE_URL": self.gemini.base_url,
        }

    def script_tool_call(
        self, model: str, name: str, arguments: dict[str, Any], *, streamed: bool = True
    ) -> None:
        """The model's next answer is a call of tool `name`, the one after it the text `FINAL` (as
        streams, or as whole answers)."""
        text = orjson.dumps(arguments).decode()
        if model == GPT:
            call = openai_responses.function_call(name, text, call_id="call_agent1")
            first = openai_responses.response(GPT, output=[call], response_id="resp_agent1")
            second = openai_responses.response(
                GPT, output=[openai_responses.message(FINAL)], response_id="resp_agent2"
            )
            self.openai.script(Script(body=first), Script(body=second))
        elif model == CLAUDE:
            for blocks, stop in ([("tool_use", name, text)], "tool_use"), ([("text", "", FINAL)], "end_turn"):
                events = _claude_events(blocks, stop)
                if streamed:
                    self.anthropic.stream(events)
                else:
                    self.anthropic.reply(200, _claude_message(events))
        else:
            for parts in [{"functionCall": {"name": name, "args": arguments}}], [{"text": FINAL}]:
                if streamed:
                    self.gemini.stream([_gemini_event(parts)])
                else:
                    self.gemini.reply(200, _gemini_event(parts))

    def requests(self, model: str) -> list[dict[str, Any]]:
        """The bodies each upstream received for `model`'s requests, in order."""
        if model == GPT:
            return self.openai.requests
        if model == CLAUDE:
            return [received.body for received in self.anthropic.received]
        return [received.body for received in self.gemini.received]


@contextlib.contextmanager
def running_upstreams() -> Iterator[Upstreams]:
    openai_fake, anthropic, gemini = FakeOpenAI(), AnthropicFake(), GeminiFake()
    servers = [AiohttpServer(anthropic.app()), AiohttpServer(gemini.app())]
    anthropic.base_url, gemini.base_url = servers[0].url, servers[1].url
    yield Upstreams(openai_fake, anthropic, gemini)
    openai_fake.close()
    for server in servers:
        server.close()


@contextlib.contextmanager
def running_gateway(upstreams: Upstreams) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(upstreams.env())
    try:
        yield gateway
    finally:
        gateway.stop()


def ledger_rows(gateway: GatewayProcess) -> list[dict[str, Any]]:
    """The spend rows of a gateway that has stopped (its SQLite ledger), oldest first; costs in USD."""
    gateway.stop()
    with sqlite3.connect(Path(gateway.tmp) / "calcifer.db") as db:
        db.row_factory = sqlite3.Row
        rows = [dict(row) for row in db.execute("SELECT * FROM spend ORDER BY id")]
    for row in rows:
        row["cost"] = None if row["cost"] is None else Decimal(row["cost"]).scaleb(-12)
    return rows


def _claude_events(blocks: list[tuple[str, str, str]], stop: str) -> list[dict[str, Any]]:
    start: dict[str, Any] = {
        "id": "msg_agent",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 120,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        },
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, (kind, name, content) in enumerate(blocks):
        if kind == "tool_use":
            block = {"type": "tool_use", "id": f"toolu_agent{index}", "name": name, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": content}
        else:
            block, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": content}
        events += [
            {"type": "content_block_start", "index": index, "content_block": block},
            {"type": "content_block_delta", "index": index, "delta": delta},
            {"type": "content_block_stop", "index": index},
        ]
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]
    return events


def _claude_message(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole message a stream of events makes."""
    message = dict(events[0]["message"])
    content = []
    for event in events:
        if event["type"] == "content_block_start":
            content.append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                content[-1]["text"] += delta["text"]
            else:
                content[-1]["input"] = orjson.loads(delta["partial_json"])
        elif event["type"] == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["usage"] = {**message["usage"], **event["usage"]}
    return {**message, "content": content}


def _gemini_event(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 150},
        "modelVersion": GEMINI,
    }
