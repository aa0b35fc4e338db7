"""Concurrent load against real gateway processes, and what each request got back, for e2e tests."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from calcifer.storage.database import async_url, open_database
from calcifer.storage.schema import spend
from tests.e2e.process import GatewayProcess

POSTGRES_URL = os.environ.get("CALCIFER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CALCIFER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(slots=True)
class Sent:
    """One request and what came back: `status` is None when no HTTP status ever arrived."""

    request_id: str
    url: str
    stream: bool
    started: float = 0.0
    ended: float = 0.0
    status: int | None = None
    echoed_id: str | None = None
    body: bytes = b""
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # sent beside the ones every request has

    @property
    def answered(self) -> bool:
        return self.status is not None

    def complete(self) -> bool:
        """Whether a 200 arrived whole: a JSON body with a choice, or a stream up to `[DONE]` with usage."""
        if self.status != 200:
            return False
        if self.stream:
            events = [line[6:] for line in self.body.split(b"\n") if line.startswith(b"data: ")]
            if not events or events[-1] != b"[DONE]":
                return False
            chunks = [orjson.loads(event) for event in events[:-1]]
            finished = any(c.get("choices") and c["choices"][0].get("finish_reason") for c in chunks)
            return finished and any(c.get("usage") for c in chunks)
        answer = orjson.loads(self.body)
        return bool(answer.get("choices")) and answer["choices"][0].get("finish_reason") is not None

    def error_code(self) -> str | None:
        try:
            code = orjson.loads(self.body)["error"]["code"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        return str(code) if code is not None else None


async def send(session: aiohttp.ClientSession, sent: Sent, body: dict[str, object], key: str | None) -> None:
    headers = {"content-type": "application/json", "x-request-id": sent.request_id, **sent.headers}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    sent.started = time.monotonic()
    try:
        async with session.post(sent.url, data=orjson.dumps(body), headers=headers) as response:
            sent.status = response.status
            sent.echoed_id = response.headers.get("x-request-id")
            sent.body = await response.read()
    except (aiohttp.ClientError, TimeoutError, ConnectionError) as error:
        sent.error = repr(error)
    finally:
        sent.ended = time.monotonic()


async def fire(
    requests: Sequence[tuple[Sent, dict[str, object]]],
    key: str | None,
    *,
    concurrency: int,
    timeout: float,
    on_done: Callable[[Sent], None] = lambda _sent: None,
) -> None:
    """Send every request, at most `concurrency` at a time, each on a connection of its own; the whole
    load is bounded by `timeout` seconds."""
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(sent: Sent, body: dict[str, object]) -> None:
            async with gate:
                await send(session, sent, body, key)
            on_done(sent)

        async with asyncio.timeout(timeout):
            await asyncio.gather(*(one(sent, body) for sent, body in requests))


@dataclass(frozen=True, slots=True)
class Row:
    request_id: str
    status: int
    streamed: bool
    cut_short: bool
    cost: object


async def ledger_rows(url: str, schema: str | None = None) -> list[Row]:
    """Every row of the spend ledger, read straight from the database."""
    database = await open_database(url, schema=schema, migrate=False)
    try:
        columns = (spend.c.request_id, spend.c.status, spend.c.streamed, spend.c.cut_short, spend.c.cost)
        async with database.engine.connect() as connection:
            rows = (await connection.execute(select(*columns))).all()
    finally:
        await database.aclose()
    return [Row(*row) for row in rows]


def sqlite_url(gateway: GatewayProcess) -> str:
    return f"sqlite:///{Path(gateway.tmp) / 'calcifer.db'}"


def _unavailable(message: str) -> None:
    if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
        pytest.fail(message)
    pytest.skip(message)


async def require_postgres() -> str:
    """The test PostgreSQL URL; skips loudly when unreachable (fails under CALCIFER_REQUIRE_SERVICES)."""
    engine = create_async_engine(async_url(POSTGRES_URL), connect_args={"timeout": 2})
    try:
        async with engine.connect():
            pass
    except (OSError, SQLAlchemyError, TimeoutError) as error:
        _unavailable(
            f"PostgreSQL is not reachable at {POSTGRES_URL} ({error!r}): the replica test did not run"
        )
    finally:
        await engine.dispose()
    return POSTGRES_URL


def require_redis() -> str:
    """The test Redis URL; skips loudly when unreachable (fails under CALCIFER_REQUIRE_SERVICES)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        _unavailable(f"Redis is not reachable at {REDIS_URL} ({error!r}): the replica test did not run")
    finally:
        client.close()
    return REDIS_URL


async def drop_schema(schema: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL))
    try:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def delete_redis_keys(pattern: str) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
