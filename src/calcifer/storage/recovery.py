"""Replay the journals of dead processes into the ledger, at start-up (`SqlLedger.start`).

A journal file (`journal.py`) whose `flock` can be taken belongs to a process that is gone: its rows
that are not in the ledger yet (matched by request id and time: a client may reuse a request id) are
recorded again, through the ledger's writer, so they also reach the daily rollups. They go through this
process's own journal first, so a crash during the replay loses nothing; then the dead file is deleted.
Several processes starting on one directory are safe: a file being replayed is locked by its replayer,
and one deleted meanwhile is skipped (a lock taken on a file no longer in the directory counts for
nothing).

Budgets are not settled again: a row is journalled after its request's budget hold was settled (in Redis
or memory), so its spend is already counted. The holds of requests still in flight when a process died
(not answered, so without a row) are left to expire (`RedisLimiter`'s `reservation_ttl`); until then
they keep counting against the budget, which can therefore refuse early, but never overspend.

A line that does not decode (the last one, cut by the kill) is skipped, counted and logged by its line
number, never its content.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from calcifer.domain.ledger import SpendRecord
from calcifer.storage.database import Database
from calcifer.storage.journal import SUFFIX, LedgerJournal, decode
from calcifer.storage.schema import spend

_log = logging.getLogger("calcifer.ledger")
_CHUNK = 500  # rows looked up in the ledger at once


@dataclass(slots=True)
class Replayed:
    """What one start-up replay did."""

    files: int = 0
    rows: int = 0  # recorded again
    present: int = 0  # already in the ledger
    corrupt: int = 0  # lines that did not decode


async def replay_dead(
    journal: LedgerJournal, database: Database, record: Callable[[SpendRecord], None]
) -> Replayed:
    """Replay every dead process's journal file in `journal`'s directory through `record`."""
    replayed = Replayed()
    for path in sorted(journal.directory.glob("*" + SUFFIX)):
        if journal.owns(path):
            continue
        fd = _claim(path)
        if fd is None:
            continue
        try:
            rows, corrupt = await asyncio.to_thread(_read, fd)
            if corrupt:
                _log.warning("ledger journal %s: %d line(s) that do not decode skipped", path.name, corrupt)
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                present = await _present(database, chunk)
                for row in chunk:
                    if (row.request_id, row.time) in present:
                        replayed.present += 1
                    else:
                        record(row)
                        replayed.rows += 1
            path.unlink()
            replayed.files += 1
            replayed.corrupt += corrupt
        finally:
            os.close(fd)
    if replayed.files:
        _log.warning(
            "ledger journal: %d row(s) of %d dead process file(s) replayed, %d already in the ledger, "
            "%d corrupt line(s) skipped",
            replayed.rows,
            replayed.files,
            replayed.present,
            replayed.corrupt,
        )
    return replayed


def _claim(path: Path) -> int | None:
    """A descriptor holding `path`'s lock, or None when a live process holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_nlink > 0:
            return fd
    except BlockingIOError:
        pass
    os.close(fd)
    return None


def _read(fd: int) -> tuple[list[SpendRecord], int]:
    rows: list[SpendRecord] = []
    corrupt = 0
    with open(fd, "rb", closefd=False) as lines:
        for line in lines:
            try:
                rows.append(decode(line))
            except (ValueError, TypeError, KeyError, ArithmeticError):
                corrupt += 1
    return rows, corrupt


async def _present(database: Database, rows: list[SpendRecord]) -> set[tuple[str, datetime]]:
    """Which of `rows` the ledger holds, as (request id, time) pairs (by the request id index)."""
    ids = {row.request_id for row in rows}
    statement = select(spend.c.request_id, spend.c.time).where(spend.c.request_id.in_(ids))
    async with database.engine.connect() as connection:
        return {(request_id, time) for request_id, time in (await connection.execute(statement)).all()}
