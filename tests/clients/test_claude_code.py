"""Claude Code 2.1.332 (`claude -p`, pinned in `claude-code/package.json`) through a real `calcifer serve`,
for a Claude model (the faithful lane), an OpenAI model and a Gemini model (translated), each with a
tool-call round trip: the fake upstream asks for Claude Code's `Read` tool on a file in its working
directory, Claude Code runs it, and its second request carries the file's content back.

A recording proxy between Claude Code and the gateway keeps the client's exact requests, so that what
reached the fakes can be compared with what the client sent. The ledger is read from the gateway's SQLite
file once it has stopped. Installed by `make clients` (`npm ci`); without npm these tests skip, loudly,
except in CI (`CALCIFER_REQUIRE_SERVICES`), where they fail.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.process import GatewayProcess
from tests.fakes.anthropic_server import API_KEY, AnthropicFake, text_events, tool_use_events
from tests.fakes.gemini_server import GeminiFake, function_call_events
from tests.fakes.openai_server import FakeOpenAI, Script, stream_chunks, tool_call_chunks
from tests.fakes.recording_proxy import RecordingProxy
from tests.fakes.threaded import AiohttpServer

CLAUDE_CODE = Path(__file__).parent / "claude-code" / "node_modules" / ".bin" / "claude"
SECRET = "the-llama-eats-at-noon-42"
MTOK = Decimal(1_000_000)
PROMPT = "What does the file notes.txt in the working directory say? Use the Read tool."


def claude_binary() -> Path:
    if CLAUDE_CODE.exists():
        return CLAUDE_CODE
    message = f"Claude Code is not installed at {CLAUDE_CODE} (npm missing? run `make clients`): not tested"
    if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Rig:
    claude: AnthropicFake
    openai: FakeOpenAI
    gemini: GeminiFake
    gateway: GatewayProcess
    proxy: RecordingProxy
    work: Path
    home: Path

    @property
    def notes(self) -> str:
        return str(self.work / "notes.txt")

    def run(self, model: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "ANTHROPIC_BASE_URL": self.proxy.url,
            "ANTHROPIC_API_KEY": "sk-any-key-the-gateway-ignores",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        }
        command = [str(claude_binary()), "-p", PROMPT, "--model", model, "--allowedTools", "Read"]
        return subprocess.run(
            command, check=False, cwd=self.work, env=env, capture_output=True, text=True, timeout=90
        )

    def rows(self) -> list[tuple[Any, ...]]:
        """Stop the gateway (it drains the ledger) and read its rows."""
        self.gateway.stop()
        with sqlite3.connect(Path(self.gateway.tmp) / "calcifer.db") as db:
            return db.execute(
                "SELECT model, provider, status, prompt_tokens, completion_tokens, cost, streamed, customer"
                " FROM spend ORDER BY id"
            ).fetchall()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    claude_binary()
    claude, openai, gemini = AnthropicFake(), FakeOpenAI(), GeminiFake()
    claude_server, gemini_server = AiohttpServer(claude.app()), AiohttpServer(gemini.app())
    env = {
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": claude_server.url,
        "OPENAI_API_KEY": "sk-openai-test",
        "OPENAI_BASE_URL": openai.base_url,
        "GEMINI_API_KEY": gemini.api_key,
        "GEMINI_BASE_URL": gemini_server.url + "/v1beta",
    }
    gateway = GatewayProcess(env)
    proxy = RecordingProxy(gateway.url)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / "notes.txt").write_text(SECRET + "\n")
    try:
        yield Rig(claude, openai, gemini, gateway, proxy, work, home)
    finally:
        proxy.close()
        gateway.stop()
        for server in (claude_server, gemini_server):
            server.close()
        openai.close()


def pico(cost: Decimal) -> int:
    return int(cost * 10**12)


def messages_of(recorded: bytes) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = json.loads(recorded)["messages"]
    return messages


def test_claude_model_on_the_faithful_lane(rig: Rig) -> None:
    model = "claude-sonnet-4-6"
    thinking, signature = "The user wants notes.txt: I will read it.", "EqQBCkYIBRgCKkBs+/zZ9=="
    rig.claude.stream(
        tool_use_events(
            model,
            "Read",
            {"file_path": rig.notes},
            thinking=thinking,
            signature=signature,
            tool_id="toolu_01",
        )
    )
    rig.claude.stream(text_events(model, f"The note says: {SECRET}", 200, 9))
    done = rig.run(model)
    assert done.returncode == 0, done.stderr
    assert f"The note says: {SECRET}" in done.stdout
    sent, reached = rig.proxy.received, rig.claude.received
    assert [r.path for r in sent] == ["/v1/messages", "/v1/messages"] and len(reached) == 2
    for client, upstream in zip(sent, reached, strict=True):
        assert upstream.raw == client.raw  # the client's own bytes
        assert upstream.query == client.query == "beta=true"
        for header in ("anthropic-beta", "anthropic-version"):
            assert upstream.headers[header] == client.headers[header]
    assert "interleaved-thinking-2025-05-14" in reached[0].headers["anthropic-beta"]
    first = json.loads(reached[0].raw)
    assert first["thinking"]["type"] in ("enabled", "adaptive") and "context_management" in first
    # The second request carries the signed thinking block back, unchanged, and the tool's output.
    assistant, result = messages_of(reached[1].raw)[-2:]
    assert assistant["content"][0] == {"type": "thinking", "thinking": thinking, "signature": signature}
    assert assistant["content"][1]["type"] == "tool_use" and assistant["content"][1]["input"] == {
        "file_path": rig.notes
    }
    assert result["content"][0]["tool_use_id"] == "toolu_01" and SECRET in result["content"][0]["content"]
    rows = rig.rows()
    user = json.loads(first["metadata"]["user_id"])
    assert user["session_id"]  # Claude Code's user id (a JSON string) is the ledger's customer
    assert rows == [
        (model, "anthropic", 200, 120, 40, pico((120 * 3 + 40 * 15) / MTOK), 1, first["metadata"]["user_id"]),
        (model, "anthropic", 200, 200, 9, pico((200 * 3 + 9 * 15) / MTOK), 1, first["metadata"]["user_id"]),
    ]


def test_openai_model_through_the_translation(rig: Rig) -> None:
    arguments = json.dumps({"file_path": rig.notes})
    rig.openai.script(
        Script(chunks=tool_call_chunks("gpt-4o", "call_read_1", "Read", arguments)),
        Script(chunks=stream_chunks("gpt-4o", ["The note says: ", SECRET])),
    )
    done = rig.run("gpt-4o")
    assert done.returncode == 0, done.stderr
    assert f"The note says: {SECRET}" in done.stdout
    # Claude Code's first, richer request for a model it does not know (a `system` message inside
    # `messages`, `output_config`, adaptive thinking) is answered: no 400 and no reduced retry.
    sent = rig.proxy.received
    assert len(sent) == 2 and "system" in [m["role"] for m in messages_of(sent[0].raw)]
    assert "output_config" in json.loads(sent[0].raw)
    first, second = rig.openai.requests
    assert first["model"] == "gpt-4o" and first["stream"] is True
    assert "system" in [m["role"] for m in first["messages"]] and "reasoning_effort" not in first
    assert "Read" in [tool["function"]["name"] for tool in first["tools"]]
    call, result = second["messages"][-2:]
    [tool_call] = call["tool_calls"]
    assert tool_call["id"] == "call_read_1"
    assert json.loads(tool_call["function"]["arguments"]) == {"file_path": rig.notes}
    assert (
        result["role"] == "tool" and result["tool_call_id"] == "call_read_1" and SECRET in result["content"]
    )
    user = json.loads(sent[0].raw)["metadata"]["user_id"]
    assert first["user"] == user
    assert rig.rows() == [
        ("gpt-4o", "openai", 200, 300, 20, pico((300 * Decimal("2.5") + 20 * 10) / MTOK), 1, user),
        ("gpt-4o", "openai", 200, 10, 2, pico((10 * Decimal("2.5") + 2 * 10) / MTOK), 1, user),
    ]


def test_gemini_model_through_the_translation(rig: Rig) -> None:
    model = "gemini-2.5-flash"
    answer = {
        "content": {"role": "model", "parts": [{"text": f"The note says: {SECRET}"}]},
        "finishReason": "STOP",
        "index": 0,
    }
    usage = {"promptTokenCount": 500, "candidatesTokenCount": 8, "totalTokenCount": 508}
    rig.gemini.stream(function_call_events(model, "Read", {"file_path": rig.notes}))
    rig.gemini.stream([{"candidates": [answer], "usageMetadata": usage, "modelVersion": model}])
    done = rig.run(model)
    assert done.returncode == 0, done.stderr
    assert f"The note says: {SECRET}" in done.stdout
    assert len(rig.proxy.received) == 2
    first, second = rig.gemini.received
    assert (first.model, first.method, first.query) == (model, "streamGenerateContent", {"alt": "sse"})
    # Claude Code's `output_config.effort: high` is Gemini 2.5's largest thinking budget.
    assert first.body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 24576}
    assert "systemInstruction" in first.body
    call, result = second.body["contents"][-2:]
    assert call["parts"][0]["functionCall"] == {"name": "Read", "args": {"file_path": rig.notes}}
    response = result["parts"][0]["functionResponse"]
    assert response["name"] == "Read" and SECRET in json.dumps(response["response"])
    input_rate, output_rate = Decimal("0.3"), Decimal("2.5")
    rows = [row[:6] for row in rig.rows()]
    assert rows == [
        (
            model,
            "gemini",
            200,
            400,
            40,
            pico((400 * input_rate + 40 * output_rate) / MTOK),
        ),  # thoughts are output
        (model, "gemini", 200, 500, 8, pico((500 * input_rate + 8 * output_rate) / MTOK)),
    ]
