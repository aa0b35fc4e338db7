"""How deep JSON nests, measured without recursion."""

from __future__ import annotations

import pytest

from calcifer.domain.nesting import MAX_DEPTH, deeper_than


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
