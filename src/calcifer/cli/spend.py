"""`calcifer spend --by model --since 7d`: the spend ledger as a table in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import Any

from calcifer.cli.context import open_gateway_database, settings_or_report
from calcifer.domain.errors import InvalidRequest
from calcifer.domain.ledger import GroupBy, SpendGroup, SpendReport, parse_group_by, parse_time
from calcifer.storage.ledger import SqlLedger

_HEADERS = ("REQUESTS", "PROMPT TOKENS", "COMPLETION TOKENS", "COST (USD)")


def register(commands: Any) -> None:
    spend = commands.add_parser("spend", help="print spend from the ledger (CALCIFER_DATABASE_URL)")
    spend.add_argument(
        "--by",
        default="model",
        help="key, team, user, customer, tag, model, provider or day, or two of them as team,model "
        "(default model)",
    )
    spend.add_argument("--since", help="e.g. 7d, 24h or an ISO 8601 time")
    spend.add_argument("--until", help="an ISO 8601 time or a span back from now")
    spend.add_argument("--key", help="only this key id")
    spend.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    settings = settings_or_report()
    if settings is None:
        return 2
    try:
        table = spend_command(
            settings.database_url,
            args.by,
            args.since,
            until=args.until,
            key_id=args.key,
            schema=settings.database_schema,
            migrate=settings.migrate,
        )
        print(table)
    except ValueError as exc:
        print(f"calcifer spend: {exc}", file=sys.stderr)
        return 2
    return 0


def spend_command(
    database_url: str,
    by: str = "model",
    since: str | None = None,
    *,
    until: str | None = None,
    key_id: str | None = None,
    schema: str | None = None,
    migrate: bool = True,
) -> str:
    """The spend in `database_url` grouped `by` one or two (`team,model`) of key, team, user, customer,
    tag, model, provider and day, from `since` (`7d`, `24h`, or ISO 8601) to `until`, as a table.
    Raises `ValueError` with a message for the user when an argument or the URL is wrong. Opening the
    database applies pending migrations, as the gateway does, unless `migrate` is False
    (CALCIFER_MIGRATE=off): then an older schema is a `ValueError`."""
    try:
        group_by = parse_group_by(by, param="--by")
        since_at = None if since is None else parse_time(since, param="--since")
        until_at = None if until is None else parse_time(until, param="--until")
    except InvalidRequest as error:
        raise ValueError(error.message) from None
    if since_at is not None and until_at is not None and since_at >= until_at:
        raise ValueError("--until must be later than --since.")
    report = asyncio.run(_report(database_url, schema, migrate, group_by, since_at, until_at, key_id))
    return render(report)


async def _report(
    url: str,
    schema: str | None,
    migrate: bool,
    group_by: tuple[GroupBy, ...],
    since: datetime | None,
    until: datetime | None,
    key_id: str | None,
) -> SpendReport:
    database = await open_gateway_database(url, schema, migrate=migrate)
    try:
        return await SqlLedger(database).query(group_by, since, until, key_id)
    finally:
        await database.aclose()


def render(report: SpendReport) -> str:
    """`report` as an aligned text table with a total line; costs exact, unpriced spend marked."""
    title = f"Spend by {' and '.join(report.group_by)}" + _window(report.since, report.until)
    if not report.groups:
        return f"{title}: nothing recorded."
    unpriced = report.total.unpriced > 0
    headers = (" / ".join(report.group_by).upper(), *_HEADERS, *(("UNPRICED",) if unpriced else ()))
    rows = [
        _cells(group, " / ".join(v or "(none)" for v in group.values), unpriced) for group in report.groups
    ]
    rows.append(_cells(report.total, "TOTAL", unpriced))
    _align_costs(rows, cost_column=4)
    total = rows.pop()
    widths = [max(len(row[i]) for row in [headers, *rows, total]) for i in range(len(headers))]
    lines = [title, "", _line(headers, widths)]
    lines += [_line(row, widths) for row in rows]
    lines += ["-" * len(_line(headers, widths)), _line(total, widths)]
    if unpriced:
        lines += ["", "Unpriced requests (models without a known price) are not included in COST."]
    return "\n".join(lines)


def _window(since: datetime | None, until: datetime | None) -> str:
    parts = []
    if since is not None:
        parts.append(f" since {_iso(since)}")
    if until is not None:
        parts.append(f" until {_iso(until)}")
    return "".join(parts) or " (all time)"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _cells(group: SpendGroup, name: str, unpriced: bool) -> tuple[str, ...]:
    cost = "-" if group.cost is None else format(group.cost, "f")
    cells = (name, f"{group.requests:,}", f"{group.prompt_tokens:,}", f"{group.completion_tokens:,}", cost)
    return (*cells, f"{group.unpriced:,}") if unpriced else cells


def _align_costs(rows: list[tuple[str, ...]], cost_column: int) -> None:
    """Pad the cost cells so that their decimal points line up."""
    costs = [row[cost_column] for row in rows]
    numeric = [c for c in costs if c != "-"]
    decimals = max((len(c.partition(".")[2]) for c in numeric), default=0)
    for i, (row, cost) in enumerate(zip(rows, costs, strict=True)):
        if cost == "-":
            padded = cost + " " * (decimals + 1 if decimals else 0)
        else:
            whole, dot, fraction = cost.partition(".")
            padded = whole + (dot or (" " if decimals else "")) + fraction.ljust(decimals)
        rows[i] = (*row[:cost_column], padded, *row[cost_column + 1 :])


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    first, *rest = cells
    cells_ = [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
    return "  ".join(cells_).rstrip()
