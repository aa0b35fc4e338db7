"""The OpenAI Agents SDK (`openai-agents`, in the lock) through a real `calcifer serve`, on its default
Responses API, for an OpenAI, a Claude and a Gemini model: the model calls a `@function_tool`, the SDK
runs it and sends its output back, and the run ends with the model's answer. Asserted: what reached
each upstream, the run's final output, and the priced ledger rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import orjson
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from tests.clients.agents import (
    CLAUDE,
    FINAL,
    GEMINI,
    GPT,
    Upstreams,
    ledger_rows,
    running_gateway,
    running_upstreams,
)
from tests.e2e.process import GatewayProcess

NOTE = "calcifer-fire"


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    with running_upstreams() as running:
        yield running


@pytest.fixture
def gateway(upstreams: Upstreams) -> Iterator[GatewayProcess]:
    with running_gateway(upstreams) as running:
        yield running


@function_tool
def read_note(name: str) -> str:
    """Read a note by its name."""
    return f"{name}: {NOTE}"


def run_agent(gateway: GatewayProcess, model: str, streamed: bool) -> str:
    set_tracing_disabled(True)  # no trace export to OpenAI
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="sk-calcifer-client", max_retries=0)
    agent = Agent(
        name="reader",
        instructions="Answer from the notes.",
        tools=[read_note],
        model=OpenAIResponsesModel(model=model, openai_client=client),
    )

    async def run() -> str:
        try:
            if streamed:
                result = Runner.run_streamed(agent, "What does the note 'todo' say?")
                async for _ in result.stream_events():
                    pass
                return str(result.final_output)
            return str((await Runner.run(agent, "What does the note 'todo' say?")).final_output)
        finally:
            await client.close()

    return asyncio.run(run())


def tool_output(request: dict[str, Any], model: str) -> str:
    if model == GPT:
        outputs = [item for item in request["input"] if item.get("type") == "function_call_output"]
        return str(outputs[-1]["output"])
    return orjson.dumps(request).decode()


@pytest.mark.parametrize(
    ("model", "streamed"), [(GPT, False), (CLAUDE, False), (GEMINI, False), (CLAUDE, True)]
)
def test_an_agent_runs_a_function_tool_round_trip(
    model: str, streamed: bool, upstreams: Upstreams, gateway: GatewayProcess
) -> None:
    upstreams.script_tool_call(model, "read_note", {"name": "todo"}, streamed=streamed)
    assert run_agent(gateway, model, streamed) == FINAL
    first, second = upstreams.requests(model)[-2:]
    assert f"todo: {NOTE}" in tool_output(second, model)
    if model == GPT:
        assert first["tools"][0]["name"] == "read_note" and first["instructions"] == "Answer from the notes."
    elif model == CLAUDE:
        assert first["tools"][0]["name"] == "read_note"
        assert "Answer from the notes." in orjson.dumps(first["system"]).decode()
    else:
        assert first["tools"][0]["functionDeclarations"][0]["name"] == "read_note"
    rows = [row for row in ledger_rows(gateway) if row["model"] == model]
    assert len(rows) == 2 and all(row["status"] == 200 and row["streamed"] == streamed for row in rows)
    assert all(row["cost"] is not None and row["cost"] > 0 for row in rows)
