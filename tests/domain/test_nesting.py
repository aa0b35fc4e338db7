"""How deep JSON nests, measured without recursion."""

from __future__ import annotations

import json

import pytest

from calcifer.domain.nesting import MAX_DEPTH, bracket_depth, deeper_than, too_deep


def nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("depth", [0, 1, 2, 50, MAX_DEPTH - 1, MAX_DEPTH])
def test_up_to_the_limit_is_not_deeper(depth: int) -> None:
    assert not deeper_than(nested(depth))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 5000, 100_000])
def test_past_the_limit_is_deeper_at_any_depth(depth: int) -> None:
    assert deeper_than(nested(depth))


def test_the_deepest_branch_counts_and_scalars_are_no_level() -> None:
    wide = {"a": [1, "x", None], "b": {"c": [[[]]]}, "d": True}
    assert not deeper_than(wide, 5) and deeper_than(wide, 4)
    assert not deeper_than("text", 0) and not deeper_than([], 1) and deeper_than([], 0)


def text_of(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [0, 1, 50, MAX_DEPTH])
def test_exactly_at_the_limit_the_text_passes_too(depth: int) -> None:
    text = text_of(depth) or "1"
    assert bracket_depth(text) == depth
    assert not too_deep(nested(depth), text) and not too_deep(nested(depth), text.encode())


def test_past_the_limit_by_the_text_the_value_is_walked() -> None:
    text = text_of(MAX_DEPTH + 1)
    assert bracket_depth(text) == MAX_DEPTH + 1 and too_deep(nested(MAX_DEPTH + 1), text)
    assert not too_deep([], text)  # the brackets only send it to the walk; the value decides


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"a": "[[[{{{", "b": ["\\"[[", "x\\\\"], "c": "]]]}"}'
    assert bracket_depth(text) == 2
    flat = '["' + "[" * (MAX_DEPTH + 5) + '"]'
    assert bracket_depth(flat) == 1 and not too_deep(["x"], flat)


def test_without_text_the_value_is_walked() -> None:
    assert too_deep(nested(MAX_DEPTH + 1)) and not too_deep(nested(MAX_DEPTH))
    assert too_deep([[1]], None, limit=1) and not too_deep([[1]], "[[1]]", limit=2)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_text_of_many_strings_is_walked_with_the_same_answer(as_bytes: bool) -> None:
    value = {"s": ["ab"] * 100, "v": nested(50)}  # 51 levels; a quote every few characters
    text = json.dumps(value)
    raw: str | bytes = text.encode() if as_bytes else text
    assert too_deep(value, raw, limit=50) and not too_deep(value, raw, limit=51)
