"""`python -m bench.console [ROWS]`: server time of each console page on a SQLite ledger of ROWS rows
(default 1,000,000, spread over 30 days, 50 keys, 12 models, 4 providers, 8 teams, 200 users).

The rows are written straight into a fresh database file; the gateway is then started on it (its
lifespan run in-process) with a master key, one console session is opened, and each page is asked for
`REPEAT` times in-process (the ASGI scope built here, no socket, no client): the median and the worst
are printed, in milliseconds, beside the page's status.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.types import Message

from calcifer.app import create_app
from calcifer.config.settings import Settings
from calcifer.http.asgi import GatewayApp
from calcifer.storage.database import open_database

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
)
_COLUMNS = (
    "time, request_id, key_id, end_user, team, model, provider, status, prompt_tokens, completion_tokens,"
    " cached_tokens, cache_write_tokens, reasoning_tokens, cost, price_version, latency_ms, streamed,"
    " cut_short, estimated, cache_hit, cost_saved"
)


def fill(path: Path, rows: int) -> None:
    """`rows` ledger rows over the last 30 days, oldest first, in SQLite's stored form."""
    pick = random.Random(7)
    models = [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("claude-sonnet-4-5", "anthropic")]
    models += [("gemini-2.5-flash", "google"), ("echo4", "echo")] + [(f"llama-{i}", "vllm") for i in range(7)]
    start = datetime.now(UTC) - timedelta(days=30)
    step = 30 * 86400 / rows
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO virtual_keys VALUES ('key_bench_07', 'bench', 'h', NULL, 'total', '[]',"
            " NULL, NULL, '{}', '2026-01-01 00:00:00.000000', 0)"
        )
        batch = []
        for n in range(rows):
            model, provider = pick.choice(models)
            moment = start + timedelta(seconds=n * step)
            batch.append(
                (
                    moment.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    f"req-{n}",
                    f"key_bench_{n % 50:02d}",
                    f"user-{n % 200}",
                    f"team-{n % 8}",
                    model,
                    provider,
                    500 if n % 97 == 0 else 200,
                    120,
                    40,
                    0,
                    0,
                    0,
                    1_250_000_000,
                    "bench",
                    300,
                    n % 3 == 0,
                    0,
                    0,
                    0,
                    None,
                )
            )
            if len(batch) == 50_000:
                db.executemany(f"INSERT INTO spend ({_COLUMNS}) VALUES ({', '.join('?' * 21)})", batch)
                batch.clear()
        if batch:
            db.executemany(f"INSERT INTO spend ({_COLUMNS}) VALUES ({', '.join('?' * 21)})", batch)


async def call(
    app: GatewayApp, method: str, target: str, cookie: str = "", body: bytes = b""
) -> tuple[int, dict[bytes, bytes]]:
    path, _, query = target.partition("?")
    headers = [(b"host", b"bench"), (b"content-type", b"application/x-www-form-urlencoded")]
    if cookie:
        headers.append((b"cookie", f"calcifer_console={cookie}".encode()))
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


async def main(rows: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="calcifer-console-bench-"))
    url = f"sqlite:///{folder / 'ledger.db'}"
    await (await open_database(url)).aclose()
    began = time.perf_counter()
    fill(folder / "ledger.db", rows)
    print(f"{rows:,} rows written in {time.perf_counter() - began:.1f} s")
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
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
