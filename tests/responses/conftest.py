"""A real gateway in front of loopback fakes of OpenAI, Anthropic and Gemini, for the Responses API
tests; and the checks every Responses body and event must pass (OpenAI's own schemas)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.anthropic_server import API_KEY as ANTHROPIC_KEY
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AiohttpServer, AsgiServer
from tests.http.openapi import _spec as spec
from tests.http.openapi import errors

GPT, CLAUDE, GEMINI = "gpt-4o", "claude-sonnet-4-5", "gemini-2.5-flash"
MTOK = Decimal(1_000_000)
# A function tool as the Responses API declares one.
FUNCTION: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}

# List prices per 1M tokens (input, output) in the catalogue the gateway loads.
PRICES = {
    GPT: (Decimal("2.5"), Decimal(10)),
    CLAUDE: (Decimal(3), Decimal(15)),
    GEMINI: (Decimal("0.3"), Decimal("2.5")),
}


def cost(model: str, prompt: int, completion: int) -> Decimal:
    price_in, price_out = PRICES[model]
    return (prompt * price_in + completion * price_out) / MTOK


@dataclass
class Fakes:
    openai: FakeOpenAI
    anthropic: AnthropicFake
    gemini: GeminiFake
    servers: list[AiohttpServer]

    def env(self, tmp: Path) -> dict[str, str]:
        return {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "OPENAI_API_KEY": "sk-test-provider-key-123",
            "OPENAI_BASE_URL": self.openai.base_url,
            "OPENAI_MAX_RETRIES": "0",
            "OPENAI_TIMEOUT": "5s",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": self.anthropic.base_url,
            "ANTHROPIC_MAX_RETRIES": "0",
            "GEMINI_API_KEY": self.gemini.api_key,
            "GEMINI_BASE_URL": self.gemini.base_url,
            "GEMINI_MAX_RETRIES": "0",
        }


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    fake_openai = FakeOpenAI()
    anthropic, gemini = AnthropicFake(), GeminiFake()
    servers = [AiohttpServer(anthropic.app()), AiohttpServer(gemini.app())]
    anthropic.base_url, gemini.base_url = servers[0].url, servers[1].url
    yield Fakes(fake_openai, anthropic, gemini, servers)
    fake_openai.close()
    for server in servers:
        server.close()


@pytest.fixture
def gateway(fakes: Fakes, tmp_path: Path) -> Iterator[AsgiServer]:
    server = AsgiServer(create_app(Settings.from_env(fakes.env(tmp_path))))
    yield server
    server.close()


@pytest.fixture
def client(gateway: AsgiServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0)


def valid(schema: str, instance: object) -> None:
    """`instance` (a parsed JSON body or event) passes OpenAI's schema `schema`."""
    problems = errors(schema, instance)
    assert not problems, f"{schema}: {problems[:5]}"


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The events of an SSE body, each checked to be named by its type."""
    found = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        event = orjson.loads(lines["data"])
        assert lines.get("event") == event["type"]
        found.append(event)
    return found


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Each stream event type's own schema (the members of `ResponseStreamEvent`), so that a failure
    names the broken field instead of "not valid under any of the given schemas"."""
    schemas = spec()["components"]["schemas"]
    names = {}
    for member in schemas["ResponseStreamEvent"]["anyOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"].get("enum", ()):
            names[kind] = name
    return names


def valid_stream(events: list[dict[str, Any]]) -> None:
    """Every event passes its schema in `ResponseStreamEvent`; sequence numbers count up from the first."""
    for event in events:
        valid(_event_schemas()[event["type"]], event)
    numbers = [event["sequence_number"] for event in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def usage_cost(usage: Any) -> Decimal:
    extra = usage.model_extra if hasattr(usage, "model_extra") else usage
    assert extra is not None
    return Decimal(str(extra["cost"]))
