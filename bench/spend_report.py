"""`python -m bench.spend_report [ROWS] [--database-url URL] [--keep] [--ledger NAME]`: how long
`/v1/spend`'s query takes over a ledger of ROWS rows (default 1,000,000, spread over 30 days; 200 keys in
20 teams, 2,000 customers, 12 models on 5 providers, a tag on a third of the rows), grouped by team, by
model and by both for 30 days.

The rows are written by the ledger's own writer (rows and rollups, as in production) into a fresh SQLite
file, or into a fresh schema of the PostgreSQL database at `--database-url` (default
`CALCIFER_BENCH_DATABASE_URL`; unset: SQLite), dropped at the end unless `--keep`; or `--ledger` names
the SQLite file or the kept PostgreSQL schema of an earlier run (migrated to this version on open; ROWS
is then ignored). Each report is then asked for `REPEAT` times through `SqlLedger.query` (what the route
awaits), and, interleaved with it, the same report summed from daily rollups only (the narrowest that
has its dimensions, `rollup_for`: what every report read before `spend_blocks_models`); the median and
p95 of each are printed in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from bench.run import _python_speed
from calcifer.domain.ledger import GroupBy, SpendRecord, day_span
from calcifer.storage.database import Database, open_database
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.spend_reports import group_of, report_statement, rollup_for

REPEAT = 21
MODELS = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic")]
MODELS += [("gemini-2.5-flash", "google"), ("echo4", "echo")] + [(f"llama-{i}", "vllm") for i in range(7)]


async def fill(ledger: SqlLedger, rows: int) -> None:
    pick = random.Random(14)
    start = datetime.now(UTC) - timedelta(days=30)
    step = 30 * 86400 / rows
    for n in range(rows):
        model, provider = pick.choice(MODELS)
        key = n % 200
        ledger.record(
            SpendRecord(
                time=start + timedelta(seconds=n * step),
                request_id=f"req-{n}",
                key_id=f"key_{key:03d}",
                user=f"user-{key}",
                team=f"team-{key % 20}",
                model=model,
                provider=provider,
                status=500 if n % 97 == 0 else 200,
                prompt_tokens=120,
                completion_tokens=40,
                cost=Decimal("0.000123") if n % 13 else None,
                customer=f"customer-{pick.randrange(2000)}",
                tags=("beta",) if n % 3 == 0 else (),
                outcome="failed" if n % 97 == 0 else "answered",
            )
        )
        if n % 20_000 == 19_999:
            await ledger.flush()


async def daily(database: Database, group_by: tuple[GroupBy, ...], since: datetime) -> int:
    """The report summed from daily rollups only (groups built as the ledger builds them): the
    baseline."""
    start, end = day_span(since, None)
    async with database.engine.connect() as connection:
        statement, parameters = report_statement(group_by, start, end, {}, rollup_for(group_by))
        rows = (await connection.execute(statement, parameters)).all()
    return len([group_of(row, len(group_by)) for row in rows])


def _summary(timings: list[float]) -> str:
    p95 = sorted(timings)[int(0.95 * (len(timings) - 1))]
    return f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms"


@asynccontextmanager
async def fresh_database(
    url: str | None, name: str, keep: bool = False, ledger: str | None = None
) -> AsyncIterator[Database]:
    """A fresh SQLite file (`url` None), or a fresh schema of the PostgreSQL database at `url`, dropped
    at the end unless `keep`; or, `ledger` given, that SQLite file or kept schema, kept."""
    schema = None
    if url is None:
        path = ledger or f"{tempfile.mkdtemp(prefix=f'calcifer-{name}-')}/calcifer.db"
        url = f"sqlite:///{path}"
    else:
        schema = ledger or f"bench_{name}_{uuid.uuid4().hex[:8]}"
        keep = keep or ledger is not None
    database = await open_database(url, schema=schema)
    try:
        yield database
    finally:
        if schema is not None and not keep:
            async with database.engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await database.aclose()


async def main(rows: int, url: str | None, keep: bool, reuse: str | None) -> None:
    began = time.perf_counter()
    async with fresh_database(url, "spend", keep, reuse) as database:
        ledger = SqlLedger(database, max_queue=rows + 1)
        await ledger.start()
        where = f"schema {database.schema}" if database.schema else database.engine.url
        if reuse is None:
            await fill(ledger, rows)
            print(
                f"{database.dialect}: {rows:,} rows written in {time.perf_counter() - began:.0f} s ({where})"
            )
        else:
            print(f"{database.dialect}: opened and migrated in {time.perf_counter() - began:.1f} s ({where})")
        await ledger.aclose()
        print(f"  machine: a 10M-addition Python loop takes {_python_speed():.0f} ms (compare runs by it)")
        since = datetime.now(UTC) - timedelta(days=30)
        asks: tuple[tuple[GroupBy, ...], ...] = (("team",), ("model",), ("team", "model"))
        for group_by in asks:
            timings, baseline = [], []
            for _ in range(REPEAT):
                began = time.perf_counter()
                report = await ledger.query(group_by, since=since)
                timings.append((time.perf_counter() - began) * 1000)
                began = time.perf_counter()
                await daily(database, group_by, since)
                baseline.append((time.perf_counter() - began) * 1000)
            print(
                f"  group_by={','.join(group_by)}: {_summary(timings)} "
                f"({len(report.groups)} groups, {report.total.requests:,} answered); "
                f"from daily rollups only: {_summary(baseline)}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.spend_report", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "rows", nargs="?", type=int, default=1_000_000, help="ledger rows (default 1,000,000)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CALCIFER_BENCH_DATABASE_URL") or None,
        help="a PostgreSQL URL (default: $CALCIFER_BENCH_DATABASE_URL; unset: a fresh SQLite file)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the PostgreSQL schema (its name is printed)"
    )
    parser.add_argument(
        "--ledger", help="the SQLite file or PostgreSQL schema an earlier run printed (ROWS is then ignored)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.database_url, args.keep, args.ledger))
