"""A table keyed by client-chosen names stays bounded and keeps what is in use."""

from __future__ import annotations

import pytest

from calcifer.domain.bounded import LruTable


def test_the_least_recently_used_entry_goes_first() -> None:
    table: LruTable[str, int | None] = LruTable(2)
    table.put("a", 1)
    table.put("b", None)
    assert table.get("a") == 1  # "a" is now the most recently used
    table.put("c", 3)
    assert "b" not in table and "a" in table and "c" in table and len(table) == 2
    assert table.get("b", -1) == -1 and table.get("b") is None
    table.put("a", 10)  # replacing an entry keeps the size
    assert len(table) == 2 and table.get("a") == 10


def test_any_number_of_names_costs_a_bounded_table() -> None:
    table: LruTable[str, int] = LruTable(100)
    for i in range(10_000):
        table.put(f"claude-sonnet-4-2025{i}", i)
    assert len(table) == 100 and table.get("claude-sonnet-4-20259999") == 9999


def test_a_table_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError):
        LruTable(0)
