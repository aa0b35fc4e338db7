"""Domain values: frozen, slotted, with the token arithmetic the rest of the gateway relies on."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from calcifer.domain.types import ChatRequest, ChatResponse, Priced, StreamChunk, StreamOutcome, Usage


def test_usage_total_is_prompt_plus_completion_only() -> None:
    # cached, cache-write and reasoning tokens are parts of prompt/completion: never added again
    usage = Usage(100, 40, cached_tokens=60, cache_write_tokens=30, reasoning_tokens=25)
    assert usage.total_tokens == 140


def test_usage_defaults_are_zero_and_exact() -> None:
    usage = Usage(3, 4)
    assert (usage.cached_tokens, usage.cache_write_tokens, usage.reasoning_tokens) == (0, 0, 0)
    assert usage.estimated is False


@pytest.mark.parametrize(
    "value",
    [
        Usage(1, 2),
        ChatRequest("m", {}),
        ChatResponse({}, None),
        Priced(None, None, "p", "m"),
    ],
)
def test_values_are_frozen_and_slotted(value: object) -> None:
    first_field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first_field, "other")
    assert not hasattr(value, "__dict__")


def test_a_stream_chunk_is_slotted_and_carries_no_upstream_bytes_unless_given() -> None:
    # One per event on the hot path: slotted but not frozen (a frozen dataclass costs 3x to build).
    chunk = StreamChunk({"choices": []})
    assert not hasattr(chunk, "__dict__")
    assert chunk.usage is None and chunk.raw is None


def test_chat_request_defaults() -> None:
    request = ChatRequest("gpt-4o", {"model": "gpt-4o"})
    assert request.stream is False
    assert request.include_usage is False
    assert request.max_output_tokens is None


def test_stream_outcome_starts_empty_and_does_not_share_state() -> None:
    first, second = StreamOutcome(), StreamOutcome()
    first.extra["k"] = "v"
    first.chunks += 1
    first.cost = Decimal("0.1")
    assert second.extra == {}
    assert second.chunks == 0
    assert (second.provider, second.usage, second.cost, second.finish_reason, second.error) == (
        "",
        None,
        None,
        None,
        None,
    )
