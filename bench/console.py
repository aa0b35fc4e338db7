"""`python -m bench.console [ROWS] [--ledger FILE]`: server time of each console page on a SQLite ledger
of ROWS rows (default 1,000,000, spread over 30 days: 50 keys, each of one user and one of 8 teams and
serving 5 of 250 customers; 12 models on 5 providers; one tag on half the rows).

The rows are written into a fresh database file by the ledger's writer (rows and daily rollups; its
path is printed), or `--ledger` names the file an earlier run wrote (migrated to this version's
schema when the gateway starts, so a new rollup is built from the old ones as on an upgrade). The
gateway is then started on it (its
lifespan run in-process) with a master key, one console session is opened, and each page is asked for
`REPEAT` times in-process (the ASGI scope built here, no socket, no client): the median and the worst
are printed, in milliseconds, beside the page's status.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from starlette.types import Message

from calcifer.app import create_app
from calcifer.config.settings import Settings
from calcifer.domain.ledger import SpendRecord
from calcifer.http.asgi import GatewayApp
from calcifer.storage.database import open_database
from calcifer.storage.ledger import SqlLedger

MASTER = "mk-bench-console-0123456789abcdef"
REPEAT = 7
PAGES = (
    "/ui",
    "/ui/spend?group_by=model&since=30d",
    "/ui/spend?group_by=key&since=7d",
    "/ui/spend.csv?group_by=day&since=30d",
    "/ui/requests",
    "/ui/requests?model=gpt-4o&status=5xx",
    "/ui/requests/req-500000",
    "/ui/keys",
    "/ui/keys/key_bench_07",
    "/ui/models",
    "/v1/spend?group_by=model&since=30d",  # the API the spend pages read, for comparison
    "/v1/spend?group_by=day,model&since=30d",
)


async def fill(url: str, path: Path, rows: int) -> None:
    """`rows` ledger rows over the last 30 days, oldest first, written by the ledger's own writer
    (so the daily rollups the spend reports read are kept as in production)."""
    pick = random.Random(7)
    models = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic")]
    models += [("gemini-2.5-flash", "google"), ("echo4", "echo")] + [(f"llama-{i}", "vllm") for i in range(7)]
    start = datetime.now(UTC) - timedelta(days=30)
    step = 30 * 86400 / rows
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO virtual_keys (id, name, secret_hash, max_budget, budget_period, models, rpm_limit,"
            " tpm_limit, metadata, created_at, revoked) VALUES ('key_bench_07', 'bench', 'h', NULL, 'total',"
            " '[]', NULL, NULL, '{}', '2026-01-01 00:00:00.000000', 0)"
        )
    database = await open_database(url)
    ledger = SqlLedger(database, max_queue=rows + 1)
    await ledger.start()
    for n in range(rows):
        model, provider = pick.choice(models)
        ledger.record(
            SpendRecord(
                time=start + timedelta(seconds=n * step),
                request_id=f"req-{n}",
                key_id=f"key_bench_{n % 50:02d}",  # a key belongs to one user and one team
                user=f"user-{n % 50}",
                team=f"team-{n % 8}",
                model=model,
                provider=provider,
                status=500 if n % 97 == 0 else 200,
                prompt_tokens=120,
                completion_tokens=40,
                cost=Decimal("0.00125"),
                price_version="bench",
                latency_ms=300,
                streamed=n % 3 == 0,
                customer=f"customer-{n % 50 * 5 + pick.randrange(5)}",  # each key serves 5 customers
                tags=("web",) if n % 2 else (),
                outcome="failed" if n % 97 == 0 else "answered",
            )
        )
        if n % 50_000 == 0:
            await ledger.flush()
    await ledger.aclose()
    await database.aclose()


async def call(
    app: GatewayApp, method: str, target: str, cookie: str = "", body: bytes = b""
) -> tuple[int, dict[bytes, bytes]]:
    path, _, query = target.partition("?")
    headers = [(b"host", b"bench"), (b"content-type", b"application/x-www-form-urlencoded")]
    if cookie:
        headers.append((b"cookie", f"calcifer_console={cookie}".encode()))
    if path.startswith("/v1/"):
        headers.append((b"authorization", f"Bearer {MASTER}".encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    sent = False
    answer: dict[str, object] = {}

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])

    await app(scope, receive, send)
    return int(answer["status"]), answer["headers"]  # type: ignore[return-value]


async def main(rows: int, ledger: Path | None) -> None:
    if ledger is None:
        ledger = Path(tempfile.mkdtemp(prefix="calcifer-console-bench-")) / "ledger.db"
        url = f"sqlite:///{ledger}"
        await (await open_database(url)).aclose()
        began = time.perf_counter()
        await fill(url, ledger, rows)
        print(f"{rows:,} rows written in {time.perf_counter() - began:.1f} s ({ledger})")
    url = f"sqlite:///{ledger}"
    app = create_app(Settings.from_env({"CALCIFER_DATABASE_URL": url, "CALCIFER_MASTER_KEY": MASTER}))
    messages: asyncio.Queue[Message] = asyncio.Queue()
    replies: asyncio.Queue[Message] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    life = asyncio.create_task(app({"type": "lifespan"}, messages.get, replies.put))
    assert (await replies.get())["type"] == "lifespan.startup.complete"
    status, headers = await call(app, "POST", "/ui/login", body=f"key={MASTER}".encode())
    cookie = headers[b"set-cookie"].decode().split(";")[0].split("=", 1)[1]
    print(f"{'page':<42} {'status':>6} {'p50 ms':>8} {'max ms':>8}")
    for page in PAGES:
        times = []
        for _ in range(REPEAT):
            began = time.perf_counter()
            status, _ = await call(app, "GET", page, cookie)
            times.append((time.perf_counter() - began) * 1000)
        print(f"{page:<42} {status:>6} {statistics.median(times):>8.1f} {max(times):>8.1f}")
    await messages.put({"type": "lifespan.shutdown"})
    await life


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "rows", nargs="?", type=int, default=1_000_000, help="ledger rows (default 1,000,000)"
    )
    parser.add_argument(
        "--ledger", type=Path, help="a ledger file an earlier run wrote (ROWS is then ignored)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.ledger))
