"""`python -m bench.spend_report [ROWS] [DATABASE_URL]`: how long `/v1/spend`'s query takes over a ledger
of ROWS rows (default 1,000,000, spread over 30 days; 200 keys in 20 teams, 2,000 customers, 12 models
on 5 providers, a tag on a third of the rows), grouped by team and by model for 30 days.

The rows are written by the ledger's own writer (rows and daily rollups, as in production) into a fresh
SQLite file, or into a fresh schema of DATABASE_URL (PostgreSQL). Each report is then asked for
`REPEAT` times through `SqlLedger.query` (what the route awaits); the median and p95 are printed in
milliseconds.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from calcifer.domain.ledger import GroupBy, SpendRecord
from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger

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


async def main(rows: int, url: str | None) -> None:
    schema = None
    if url is None:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='calcifer-spend-')}/calcifer.db"
    else:
        schema = f"bench_spend_{uuid.uuid4().hex[:8]}"
    database = await open_database(url, schema=schema)
    try:
        ledger = SqlLedger(database, max_queue=rows + 1)
        await ledger.start()
        began = time.perf_counter()
        await fill(ledger, rows)
        await ledger.aclose()
        print(f"{database.dialect}: {rows:,} rows written in {time.perf_counter() - began:.0f} s")
        since = datetime.now(UTC) - timedelta(days=30)
        for group_by in ("team", "model", ("team", "model")):
            timings = []
            for _ in range(REPEAT):
                began = time.perf_counter()
                report = await ledger.query(group_by, since=since)
                timings.append((time.perf_counter() - began) * 1000)
            name = ",".join(group_by) if isinstance(group_by, tuple) else group_by
            p95 = sorted(timings)[int(0.95 * (REPEAT - 1))]
            print(
                f"  group_by={name}: p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms "
                f"({len(report.groups)} groups, {report.total.requests:,} answered)"
            )
    finally:
        if schema is not None:
            async with database.engine.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await database.aclose()


GROUPS: tuple[GroupBy, ...] = ("team", "model")

if __name__ == "__main__":
    asyncio.run(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, sys.argv[2] if len(sys.argv) > 2 else None)
    )
