"""The Anthropic fake and provider the Anthropic test modules share (the modules of other providers
override both names with fixtures of their own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from calcifer.providers.anthropic import AnthropicProvider
from tests.fakes.anthropic_server import API_KEY, AnthropicFake

ANTHROPIC_MODELS = frozenset({"claude-sonnet-4-5", "claude-haiku-4-5"})


@pytest.fixture
async def fake() -> AsyncIterator[AnthropicFake]:
    async with AnthropicFake() as server:
        yield server


@pytest.fixture
async def provider(fake: AnthropicFake) -> AsyncIterator[AnthropicProvider]:
    anthropic = AnthropicProvider(
        models=ANTHROPIC_MODELS,
        max_output={"claude-haiku-4-5": 64000},
        api_key=API_KEY,
        base_url=fake.base_url,
        timeout=5,
    )
    await anthropic.start()
    yield anthropic
    await anthropic.aclose()
