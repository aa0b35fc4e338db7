"""The pure token-counting rules: the chars/4 estimate, OpenAI's message framing, generated text."""

from __future__ import annotations

from calcifer.domain.ports import TokenCounter
from calcifer.domain.tokens import (
    CharCounter,
    answer_text,
    collect_chunk,
    collect_fragments,
    estimate_text,
    estimate_usage,
    prompt_tokens,
)
from calcifer.domain.types import ChatRequest, Usage


def words(text: str) -> int:
    """A visible stand-in tokenizer for the framing tests: one token per word."""
    return len(text.split())


def test_estimate_is_a_quarter_of_the_characters_rounded_up() -> None:
    assert [estimate_text(t) for t in ("", "a", "abcd", "abcde", "x" * 401)] == [0, 1, 1, 2, 101]


def test_each_message_costs_3_plus_its_role_and_content_and_the_reply_is_primed_with_3() -> None:
    body = {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there you"}]
    }
    # priming 3 + (3 + role 1 + 2 words) + (3 + role 1 + 3 words)
    assert prompt_tokens(body, words) == 3 + 6 + 7


def test_a_name_costs_one_more_token() -> None:
    body = {"messages": [{"role": "user", "name": "ann", "content": "hello"}]}
    assert prompt_tokens(body, words) == 3 + 3 + 1 + (1 + 1) + 1


def test_content_parts_count_their_text_and_85_per_image() -> None:
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    body = {"messages": [{"role": "user", "content": parts}]}
    assert prompt_tokens(body, words) == 3 + 3 + 1 + 3 + 85


def test_tools_and_tool_calls_count_as_their_json_text() -> None:
    call = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    tools = [{"type": "function", "function": {"name": "f"}}]
    body = {
        "messages": [{"role": "assistant", "content": None, "tool_calls": call}],
        "tools": tools,
    }
    counted: list[str] = []

    def record(text: str) -> int:
        counted.append(text)
        return 1

    assert prompt_tokens(body, record) == 3 + 3 + 1 + 1 + 1
    assert '"arguments":"{}"' in counted[1] and '"name":"f"' in counted[2]


def test_malformed_messages_are_skipped_not_fatal() -> None:
    assert prompt_tokens({"messages": "nope"}, words) == 3
    assert prompt_tokens({"messages": ["x", {"role": "user", "content": 5}]}, words) == 3 + 3 + 1


def test_answer_text_takes_content_reasoning_and_tool_calls() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "content": "Sure. ",
                    "reasoning_content": "think ",
                    "tool_calls": [{"function": {"name": "get", "arguments": '{"a":1}'}}],
                }
            }
        ]
    }
    assert answer_text(body) == 'Sure. think get{"a":1}'
    assert answer_text({"choices": "x"}) == ""


def test_collect_chunk_takes_every_choice_delta_and_argument_fragments() -> None:
    into: list[str] = []
    collect_chunk({"choices": [{"delta": {"role": "assistant", "content": "He"}}]}, into)
    collect_chunk(
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"x'}}]}}]}, into
    )
    collect_chunk({"choices": [{"delta": {}, "finish_reason": "stop"}]}, into)
    collect_chunk({"choices": [], "usage": None}, into)
    assert into == ["He", '{"x']


def test_anthropic_answers_and_stream_events_give_their_generated_text() -> None:
    message = {
        "type": "message",
        "content": [
            {"type": "thinking", "thinking": "hmm ", "signature": "s"},
            {"type": "text", "text": "Sure. "},
            {"type": "tool_use", "id": "t", "name": "Read", "input": {"a": 1}},
            "odd",
        ],
    }
    assert answer_text(message) == 'hmm Sure. {"a":1}'
    into: list[str] = []
    for event in (
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "So"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"p'},
        },
        {"type": "content_block_delta", "delta": "odd"},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "text", "text": "x"}},
        {"type": "message_delta", "usage": {"output_tokens": 5}},
    ):
        collect_chunk(event, into)
    assert into == ["So", "Hi", '{"p']


def test_estimate_usage_is_marked_estimated_and_skips_counting_nothing() -> None:
    counter = CharCounter()
    assert isinstance(counter, TokenCounter)
    request = ChatRequest("m", {"messages": [{"role": "user", "content": "abcdefgh"}]})
    # 3 priming + 3 framing + "user" 1 + "abcdefgh" 2
    assert estimate_usage(counter, request, "hi there!") == Usage(9, 3, estimated=True)
    assert estimate_usage(counter, request, "") == Usage(9, 0, estimated=True)


def test_odd_shapes_count_nothing_rather_than_fail() -> None:
    counter = CharCounter()
    body: dict[str, object] = {
        "model": "m",
        "messages": [
            {"role": "user", "content": None, "refusal": 7},  # neither text nor parts; a non-string field
            {"role": "user", "content": [42, {"type": "input_audio"}, {"type": "text", "text": "abcd"}]},
        ],
    }
    request = ChatRequest(model="m", body=body)
    # 3 + "user"(1) + 0 for the first message; 3 + "user"(1) + "abcd"(1) for the second; 3 to prime.
    assert counter.count_prompt(request) == 3 + 1 + 3 + 1 + 1 + 3
    parts: list[str] = []
    calls: list[object] = [1, {"function": "x"}, {"function": {"name": None}}]
    collect_fragments({"content": "", "tool_calls": calls}, parts)
    collect_chunk({"choices": [1, {"delta": None}]}, parts)
    assert parts == []
    assert answer_text({"choices": [1, {"message": None}]}) == ""
