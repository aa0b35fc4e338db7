"""`LedgerJournal`: every ledger row appended to a local file before it is queued for the database, so
that the rows a SIGKILLed process answered but had not written yet are not lost.

Each process (each worker of `calcifer serve --workers`) appends to files of its own in the journal
directory, one JSON array per row and line (`SpendRecord`'s fields in order: a field is only ever
added at the end, so a line written by an older version still replays), with one `os.write` on an
`O_APPEND` descriptor: once `append` returns the line is in the kernel, so it survives the process
being killed (not a power loss or a kernel crash: there is no fsync on the hot path). The process
holds an exclusive `flock` on each of its files while it lives; a file whose lock another process can
take belongs to a dead process (`recovery.py` replays it).

The files are segments. The ledger's writer says how many of the oldest rows it is done with
(`done`): written, or refused by the database as data. A segment whose rows are all done is deleted once
a newer one exists; the newest is emptied (truncated) when everything in it is done, and a new segment
is started when it passes `segment_bytes`. So the journal holds about what the queue holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import time
import uuid
from collections import deque
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Final

import orjson

from calcifer.domain.ledger import SpendRecord

_log = logging.getLogger("calcifer.ledger")
SUFFIX: Final = ".journal"
_NEW: Final = ".new"  # a segment being created: not yet locked, never replayed
_NAMES: Final = tuple(f.name for f in fields(SpendRecord))
_VALUES: Final = attrgetter(*_NAMES)
_MONEY: Final = ("cost", "cost_saved")
_MONEY_AT: Final = tuple(_NAMES.index(name) for name in _MONEY)
_APPEND_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def encode(row: SpendRecord) -> bytes:
    """One row as one JSON line: its field values in order, money as decimal text, time as RFC 3339.
    (An array, not an object: orjson writes it in a third of the time a dataclass takes.)"""
    values = list(_VALUES(row))
    for index in _MONEY_AT:
        if values[index] is not None:
            values[index] = str(values[index])
    return orjson.dumps(values, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> SpendRecord:
    """The row `encode` wrote. Raises ValueError (or TypeError) on a line that is not one. Fields a
    newer version appended are ignored, and fields added since an older version wrote the line take
    their defaults, so a journal left by the previous version replays."""
    data = orjson.loads(line)
    if not isinstance(data, list):
        raise ValueError("a journal line is a JSON array")
    values = dict(zip(_NAMES, data, strict=False))
    values["time"] = datetime.fromisoformat(values["time"])
    for name in _MONEY:
        if values.get(name) is not None:
            values[name] = Decimal(values[name])
    if "tags" in values:
        values["tags"] = tuple(values["tags"])
    return SpendRecord(**values)


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    rows: int = 0  # appended and not yet done
    size: int = 0


class LedgerJournal:
    """This process's journal files in `directory` (created if missing). Open with `LedgerJournal.open`."""

    def __init__(self, directory: Path, *, segment_bytes: int = 4 * 1024 * 1024) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._name = f"ledger-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._number = 0
        self._segments: deque[_Segment] = deque()
        self.failed = 0  # rows that could not be appended (disk full...): still written to the ledger
        self._kept = False
        self._last_error_log = float("-inf")

    @classmethod
    def open(cls, directory: Path, *, segment_bytes: int = 4 * 1024 * 1024) -> LedgerJournal:
        directory.mkdir(parents=True, exist_ok=True)
        journal = cls(directory, segment_bytes=segment_bytes)
        journal._segments.append(journal._new_segment())
        return journal

    def owns(self, path: Path) -> bool:
        return any(segment.path == path for segment in self._segments)

    @property
    def pending(self) -> int:
        """Rows appended and not yet done."""
        return sum(segment.rows for segment in self._segments)

    def append(self, row: SpendRecord) -> None:
        """Append `row` (one write system call). Never raises: a failed write is counted and logged, and
        the row still goes to the database, unprotected."""
        segment = self._segments[-1]
        segment.rows += 1
        line = encode(row)
        try:
            written = os.write(segment.fd, line)
            if written < len(line):  # a full disk part-way: end the line, so the next one stays whole
                os.write(segment.fd, b"\n")
                raise OSError("short write")
            segment.size += written
        except OSError as error:
            self.failed += 1
            now = time.monotonic()
            if now - self._last_error_log >= 1.0:
                self._last_error_log = now
                _log.error("ledger journal: a row could not be appended (%d in all): %r", self.failed, error)

    def done(self, count: int) -> None:
        """The writer is done with the `count` oldest rows: drop the segments they emptied."""
        if self._kept:
            return
        while self._segments:
            oldest = self._segments[0]
            taken = min(count, oldest.rows)
            oldest.rows -= taken
            count -= taken
            if oldest.rows or len(self._segments) == 1:
                break
            self._segments.popleft()
            self._remove(oldest)
        newest = self._segments[-1]
        if newest.size and len(self._segments) == 1 and newest.rows == 0:
            os.ftruncate(newest.fd, 0)
            newest.size = 0
        elif newest.size >= self._segment_bytes:
            self._segments.append(self._new_segment())

    def keep(self) -> None:
        """The writer gave rows up (closing with the database unreachable): keep every file as it is, for
        the next start to replay (what did reach the database is skipped then)."""
        self._kept = True

    def close(self) -> None:
        """Release the files: deleted when every row is done, else left (unlocked) for the next start's
        replay. Idempotent."""
        keep = self._kept or self.pending > 0
        while self._segments:
            segment = self._segments.popleft()
            if keep:
                os.close(segment.fd)
            else:
                self._remove(segment)
        if keep:
            _log.warning("ledger journal: rows not written to the database are left in %s", self.directory)

    def _new_segment(self) -> _Segment:
        """Create, lock and only then name a segment: a starting process never takes it for a dead one."""
        self._number += 1
        path = self.directory / f"{self._name}-{self._number:06d}{SUFFIX}"
        staging = path.with_name(path.name + _NEW)
        fd = os.open(staging, _APPEND_FLAGS, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(staging, path)
        except OSError:
            os.close(fd)
            raise
        return _Segment(path, fd)

    @staticmethod
    def _remove(segment: _Segment) -> None:
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        os.close(segment.fd)
