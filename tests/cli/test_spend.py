"""`calcifer spend`: the ledger as a terminal table, read from a real SQLite database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from calcifer.cli.spend import render, spend_command
from calcifer.domain.ledger import SpendGroup, SpendRecord, SpendReport
from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger

NOW = datetime.now(UTC)


def fill(url: str, rows: list[SpendRecord]) -> None:
    async def write() -> None:
        db = await open_database(url)
        ledger = SqlLedger(db)
        for row in rows:
            ledger.record(row)
        await ledger.aclose()
        await db.aclose()

    asyncio.run(write())


def spent(
    n: int, model: str, cost: Decimal | None, hours_ago: float = 1, user: str | None = None
) -> SpendRecord:
    return SpendRecord(
        NOW - timedelta(hours=hours_ago),
        f"r{n}",
        "key_a",
        user,
        None,
        model,
        "openai",
        200,
        1000,
        10,
        cost=cost,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'calcifer.db'}"
    fill(
        url,
        [
            spent(1, "gpt-4o", Decimal("0.0125")),
            spent(2, "gpt-4o", Decimal("1.5")),
            spent(3, "claude-sonnet-4", Decimal("12.000000000001")),
            spent(4, "mystery", None),
            spent(5, "gpt-4o", Decimal("100"), hours_ago=24 * 10, user="old"),
        ],
    )
    return url


def lines_of(table: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in table.splitlines()[3:] if line and line[0] != "-"}


def test_spend_by_model_since_7d_is_an_exact_table(url: str) -> None:
    table = spend_command(url, by="model", since="7d")
    assert table.startswith("Spend by model since ")
    header = table.splitlines()[2].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "MODEL",
        "REQUESTS",
        "PROMPT TOKENS",
        "COMPLETION TOKENS",
        "COST (USD)",
        "UNPRICED",
    ]
    rows = lines_of(table)
    assert rows["gpt-4o"] == ["gpt-4o", "2", "2,000", "20", "1.5125", "0"]
    assert rows["claude-sonnet-4"] == ["claude-sonnet-4", "1", "1,000", "10", "12.000000000001", "0"]
    assert rows["mystery"] == ["mystery", "1", "1,000", "10", "-", "1"]
    assert rows["TOTAL"] == ["TOTAL", "4", "4,000", "40", "13.512500000001", "1"]
    assert "not included in COST" in table
    # The most expensive first, and the decimal points line up.
    body = table.splitlines()[3:7]
    assert body[0].startswith("claude-sonnet-4")
    assert len({line.index(".") for line in (body[0], body[1], table.splitlines()[-3])}) == 1


def test_without_since_it_is_all_time_and_groups_by_user(url: str) -> None:
    table = spend_command(url, by="user")
    assert table.startswith("Spend by user (all time)")
    rows = lines_of(table)
    assert rows["old"][1:] == ["1", "1,000", "10", "100", "0"]
    assert rows["(none)"][1:] == ["4", "4,000", "40", "13.512500000001", "1"]
    assert rows["TOTAL"][1:] == ["5", "5,000", "50", "113.512500000001", "1"]


def test_iso_since_and_until_and_one_key(url: str) -> None:
    since = (NOW - timedelta(days=11)).isoformat()
    until = (NOW - timedelta(days=9)).isoformat()
    rows = lines_of(spend_command(url, by="day", since=since, until=until, key_id="key_a"))
    assert rows["TOTAL"][:2] == ["TOTAL", "1"]
    assert "nothing recorded" in spend_command(url, by="key", key_id="key_nobody")


def test_a_table_without_unpriced_requests_has_no_unpriced_column() -> None:
    report = SpendReport(("model",), None, None, (SpendGroup(("m",), 1, 2, 3, Decimal("0.5")),))
    table = render(report)
    assert "UNPRICED" not in table and "not included" not in table
    assert table.splitlines()[-1].split() == ["TOTAL", "1", "2", "3", "0.5"]
    assert render(SpendReport(("model",), None, None, ())) == "Spend by model (all time): nothing recorded."


@pytest.mark.parametrize(
    ("by", "since", "until", "words"),
    [
        ("week", None, None, "--by"),
        ("model", "yesterday", None, "--since"),
        ("model", None, "soon", "--until"),
        ("model", "1d", "2d", "--until must be later"),
    ],
)
def test_bad_arguments_are_value_errors_for_the_user(
    url: str, by: str, since: str | None, until: str | None, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        spend_command(url, by=by, since=since, until=until)


def test_a_bad_database_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        spend_command("mysql://u@db/x", by="model")
