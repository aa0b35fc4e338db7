"""`SqlLedger`: the spend ledger on SQLite or PostgreSQL, written in batches off the response path.

`record()` puts the row on a bounded queue and returns. One tracked background task takes rows off the
queue in batches (up to `batch_size` rows, or whatever arrived within `max_delay` seconds of the first)
and inserts each batch, and adds it to the daily rollups (`rollups.py`), in one transaction; a batch
that fails for a transient reason (connection lost, database locked) is retried with backoff, never
dropped while the ledger runs. `aclose()` writes every row queued before it, then stops the writer.

With a `journal` (`journal.py`), `record()` first appends the row to this process's journal file, the
writer trims the journal as batches are committed, and `start()` replays the journals that processes
killed before their last batch left behind (`recovery.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import chain
from typing import Final

from sqlalchemy import insert
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from calcifer.domain.ledger import GroupBy, SpendFilter, SpendRecord, SpendReport, day_span
from calcifer.storage.database import Database
from calcifer.storage.journal import LedgerJournal
from calcifer.storage.recovery import replay_dead
from calcifer.storage.rollups import add_batch
from calcifer.storage.schema import spend, to_pico
from calcifer.storage.spend_reports import group_of, report_statement

_log = logging.getLogger("calcifer.ledger")
_STOP: Final = None
_MAX_BACKOFF = 5.0


class SqlLedger:
    """The `SpendLedger` on a `Database` opened by `open_database`."""

    def __init__(
        self,
        database: Database,
        *,
        max_queue: int = 100_000,
        batch_size: int = 5000,
        max_delay: float = 0.05,
        retry_delay: float = 0.2,
        close_attempts: int = 5,
        journal: LedgerJournal | None = None,
    ) -> None:
        self._db = database
        self.journal = journal
        self._queue: asyncio.Queue[SpendRecord | None] = asyncio.Queue(max_queue)
        self._batch_size = batch_size
        self._max_delay = max_delay
        self._retry_delay = retry_delay
        self._close_attempts = close_attempts
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.dropped = 0
        # Told of each batch written or failed: (rows still queued, seconds the batch's oldest row
        # waited, seconds the write took, whether it succeeded). The metrics' hook; None: nobody.
        self.on_batch: Callable[[int, float, float, bool], None] | None = None
        self._last_drop_log = float("-inf")

    def record(self, row: SpendRecord) -> None:
        """Queue `row`. If the queue is full (the database has been failing for a while) or the ledger
        is closed, the row is counted in `dropped` and logged as an error: it never blocks the caller."""
        if self._closing:
            self._drop(1, "the ledger is closed")
            return
        if self._queue.full():
            self._drop(1, "the ledger queue is full (is the database reachable?)")
            return
        if self.journal is not None:
            self.journal.append(row)
        self._queue.put_nowait(row)

    @property
    def pending(self) -> int:
        """Rows queued and not yet written."""
        return self._queue.qsize()

    async def start(self) -> None:
        """Start the writer; with a journal, replay dead processes' journals and wait until written."""
        if self._closing:
            return
        self._writer()
        if self.journal is not None and (await replay_dead(self.journal, self._db, self.record)).rows:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every row queued so far is written (or dropped). The writer must be running."""
        if self._task is None:
            raise RuntimeError("SqlLedger.flush() needs the writer: call start() first")
        await self._queue.join()

    async def aclose(self) -> None:
        """Write every queued row (recorded before `start()` too), then stop. Idempotent."""
        task = self._writer()
        if not self._closing:
            self._closing = True
            await self._queue.put(_STOP)
        await task
        if self.journal is not None:
            self.journal.close()

    def _writer(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="calcifer-ledger-writer")
        return self._task

    async def query(
        self,
        group_by: GroupBy | tuple[GroupBy, ...],
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
        *,
        where: SpendFilter | None = None,
    ) -> SpendReport:
        if (since is not None and since.tzinfo is None) or (until is not None and until.tzinfo is None):
            raise ValueError("since and until must be timezone-aware datetimes")
        dimensions = (group_by,) if isinstance(group_by, str) else group_by
        since, until = day_span(since, until)
        filters = dict(where or {})
        if key_id is not None:
            filters["key"] = key_id
        statement, parameters = report_statement(dimensions, since, until, filters)
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(statement, parameters)).all()
        groups = [group_of(row, len(dimensions)) for row in rows]
        if dimensions[0] == "day":
            groups.sort(key=lambda g: tuple(v or "" for v in g.values))
        else:
            groups.sort(
                key=lambda g: (g.cost is None, -(g.cost or 0), tuple((v is None, v or "") for v in g.values))
            )
        return SpendReport(dimensions, since, until, tuple(groups))

    # The writer.

    async def _run(self) -> None:
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is _STOP:
                self._queue.task_done()
                return
            batch = [first]
            stop = await self._fill(batch)
            await self._write(batch)
            for _ in range(len(batch) + stop):
                self._queue.task_done()

    async def _fill(self, batch: list[SpendRecord]) -> bool:
        """Add to `batch` what arrives within `max_delay`; True when the stop sentinel was reached."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_delay
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    async with asyncio.timeout(remaining):
                        item = await self._queue.get()
                except TimeoutError:
                    return False
            if item is _STOP:
                return True
            batch.append(item)
        return False

    async def _write(self, batch: list[SpendRecord]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._insert(batch)
                self.written += len(batch)
                self._done(len(batch))
                self._report(batch, started, ok=True)
                return
            except Exception as error:  # classified below: the writer must outlive any one bad row
                self._report(batch, started, ok=False)
                if _refused(error):
                    # The database refused some row as data: keep every row it accepts, drop the others.
                    if len(batch) == 1:
                        self._drop(1, f"the database refused request {batch[0].request_id!r}: {error!r}")
                        self._done(1)
                        return
                    for row in batch:
                        await self._write([row])
                    return
                attempt += 1
                if self._closing and attempt >= self._close_attempts:
                    self._drop(len(batch), f"writing failed {attempt} times while closing: {error!r}")
                    if self.journal is not None:
                        self.journal.keep()
                    return
                delay = min(self._retry_delay * 2 ** (attempt - 1), _MAX_BACKOFF)
                _log.warning(
                    "ledger write of %d rows failed (%r); retrying in %.1fs", len(batch), error, delay
                )
                await asyncio.sleep(delay)

    async def _insert(self, batch: list[SpendRecord]) -> None:
        if self._db.dialect != "sqlite":
            async with self._db.engine.begin() as connection:
                await connection.execute(insert(spend), [_values(row) for row in batch])
                await add_batch(connection, self._db.dialect, batch)
            return
        # Plain values in multi-row INSERTs: 40% less CPU per row than SQLAlchemy's typed insert, in the
        # values SQLAlchemy itself would bind (checked by the contract tests). Rows are converted in
        # parts with a turn of the event loop between: a batch of hundreds converted in one go held the
        # loop for a millisecond twenty times a second (the p99 at one connection), and converting each
        # row as it was recorded cost 8% of throughput at 1000 connections. At most 8 parts, so a busy
        # loop's long turns cannot slow the writer below the rate rows arrive. Then all the full
        # statements go in one executemany: one trip to the driver's thread, however busy the loop is
        # (a trip per statement fell behind 2,000 requests/s).
        part = max(_CONVERT_ROWS, -(-len(batch) // 8))
        rows: list[tuple[object, ...]] = []
        for start in range(0, len(batch), part):
            if start:
                await asyncio.sleep(0)
            rows.extend(_sqlite_row(row) for row in batch[start : start + part])
        whole = len(rows) - len(rows) % _SQLITE_ROWS_PER_STATEMENT
        statements = [
            tuple(chain.from_iterable(rows[start : start + _SQLITE_ROWS_PER_STATEMENT]))
            for start in range(0, whole, _SQLITE_ROWS_PER_STATEMENT)
        ]
        rest = rows[whole:]
        async with self._db.engine.begin() as connection:
            if statements:
                await connection.exec_driver_sql(_SQLITE_INSERT_MANY, statements)
            if rest:
                await connection.exec_driver_sql(_SQLITE_INSERT_ONE, rest)
            await add_batch(connection, "sqlite", batch)

    def _done(self, count: int) -> None:
        """The oldest `count` rows are written or refused as data: the journal need not keep them."""
        if self.journal is not None:
            self.journal.done(count)

    def _report(self, batch: list[SpendRecord], started: float, *, ok: bool) -> None:
        if self.on_batch is not None:
            lag = time.time() - batch[0].time.timestamp()
            self.on_batch(self._queue.qsize(), lag, time.perf_counter() - started, ok)

    def _drop(self, count: int, why: str) -> None:
        """Count lost rows; log them, at most once a second when they come in a flood."""
        self.dropped += count
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:
            self._last_drop_log = now
            _log.error("spend ledger dropped %d row(s), %d in all: %s", count, self.dropped, why)


def _refused(error: Exception) -> bool:
    """Whether `error` is about the rows themselves (retrying cannot help), not about the connection:
    the database refused a value, or the driver could not bind it (SQLite's int64 overflow...)."""
    if isinstance(error, (DataError, IntegrityError)):
        return True
    if isinstance(error, DBAPIError):
        # SQLSTATE class 22 is a data exception, 23 an integrity violation (the asyncpg adapter does
        # not map every one of them to DataError / IntegrityError).
        sqlstate = getattr(error.orig, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in ("22", "23")
    if isinstance(error, OSError):
        return False
    if isinstance(error, StatementError):
        return True
    return not isinstance(error, SQLAlchemyError)


_COLUMNS = tuple(column.name for column in spend.columns if column.name != "id")
# Rows go in 64 to an INSERT: the driver binds them in one call and steps once, where executemany
# hands the GIL back and forth on every row and starves under a busy event loop. Only two statements
# exist (64 rows, and one row for the remainder), so SQLite's statement cache stays small.
_SQLITE_ROWS_PER_STATEMENT = 64
_CONVERT_ROWS = 32  # rows converted at least between turns of the event loop (~70 us)
_SQLITE_ROW = f"({', '.join('?' for _ in _COLUMNS)})"
_SQLITE_INSERT_ONE = f"INSERT INTO spend ({', '.join(_COLUMNS)}) VALUES {_SQLITE_ROW}"
_SQLITE_INSERT_MANY = _SQLITE_INSERT_ONE + ", " + ", ".join([_SQLITE_ROW] * (_SQLITE_ROWS_PER_STATEMENT - 1))


def _fields(row: SpendRecord) -> tuple[object, ...]:
    """A row's values in `_COLUMNS` order, as Python values."""
    return (
        row.time,
        row.request_id,
        row.key_id,
        row.user,
        row.team,
        row.model,
        row.provider,
        row.status,
        row.prompt_tokens,
        row.completion_tokens,
        row.cached_tokens,
        row.cache_write_tokens,
        row.reasoning_tokens,
        row.cost,
        row.price_version,
        row.latency_ms,
        row.streamed,
        row.cut_short,
        row.estimated,
        row.cache_hit,
        row.cost_saved,
        row.customer,
        json.dumps(list(row.tags)) if row.tags else None,
        row.outcome,
        row.attempts,
        row.deployments or None,
        row.ttfb_ms,
    )


def _values(row: SpendRecord) -> dict[str, object]:
    return dict(zip(_COLUMNS, _fields(row), strict=True))


_TIME = _COLUMNS.index("time")
_MONEY = tuple(_COLUMNS.index(name) for name in ("cost", "cost_saved"))
_FLAGS = tuple(_COLUMNS.index(name) for name in ("streamed", "cut_short", "estimated", "cache_hit"))


def _sqlite_row(row: SpendRecord) -> tuple[object, ...]:
    """A row as SQLite stores it: naive UTC time text, money in pico-dollars, booleans as 0/1."""
    values = list(_fields(row))
    values[_TIME] = row.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    for index in _MONEY:
        amount = values[index]
        if amount is not None:
            values[index] = to_pico(amount)  # type: ignore[arg-type]
    for index in _FLAGS:
        values[index] = int(bool(values[index]))
    return tuple(values)
