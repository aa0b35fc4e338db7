"""`python -m bench.ledger_writer [ROWS] [--batch N] [--database-url URL]`: what the ledger writer costs
per batch: ROWS rows (default 20,000) recorded `--batch` at a time (default 100: ~2,000 requests/s at
the writer's 50 ms wait), each batch written (rows and every daily rollup, in one transaction) before
the next is recorded. Rows as `bench.spend_report` makes them (200 keys in 20 teams, 12 models, 2,000
customers, a tag on a third), all on one day, as a live gateway writes them.

Prints the process's CPU time (the event loop and the SQLite driver's thread: `time.process_time`) and
the wall time per batch and per row. Into a fresh SQLite file, or a fresh schema of the PostgreSQL
database at `--database-url` (dropped at the end; there the server's own CPU is not counted).
For a load-independent comparison of two versions, run it under `valgrind --tool=callgrind` with each
version's `src` first on `PYTHONPATH`, and compare the instruction counts.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime
from decimal import Decimal

from bench.spend_report import MODELS, fresh_database
from calcifer.domain.ledger import SpendRecord
from calcifer.storage.ledger import SqlLedger


def rows(count: int) -> list[SpendRecord]:
    pick = random.Random(16)
    now = datetime.now(UTC).replace(hour=12)
    made = []
    for n in range(count):
        model, provider = pick.choice(MODELS)
        key = pick.randrange(200)
        made.append(
            SpendRecord(
                time=now,
                request_id=f"req-{n}",
                key_id=f"key_{key:03d}",
                user=f"user-{key}",
                team=f"team-{key % 20}",
                model=model,
                provider=provider,
                status=200,
                prompt_tokens=120,
                completion_tokens=40,
                cost=Decimal("0.000123") if n % 13 else None,
                customer=f"customer-{pick.randrange(2000)}",
                tags=("beta",) if n % 3 == 0 else (),
            )
        )
    return made


async def main(count: int, batch: int, url: str | None) -> None:
    records = rows(count)
    async with fresh_database(url, "writer") as database:
        ledger = SqlLedger(database, batch_size=batch)
        await ledger.start()
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, count, batch):
            for record in records[start : start + batch]:
                ledger.record(record)
            await ledger.flush()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await ledger.aclose()
        batches = -(-count // batch)
        print(
            f"{database.dialect}: {count:,} rows in {batches:,} batches of {batch}: "
            f"CPU {cpu * 1e3 / batches:.2f} ms per batch, {cpu * 1e6 / count:.1f} us per row; "
            f"wall {wall * 1e3 / batches:.2f} ms per batch"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger_writer", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("rows", nargs="?", type=int, default=20_000, help="rows to write (default 20,000)")
    parser.add_argument("--batch", type=int, default=100, help="rows per batch (default 100)")
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL URL (default: a fresh SQLite file)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.batch, args.database_url))
