"""The ledger journal: rows appended before they are queued, trimmed as batches are written, and the
files of dead processes replayed at start-up (SQLite and a real PostgreSQL, see conftest.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from calcifer.domain.ledger import SpendRecord
from calcifer.storage.database import Database
from calcifer.storage.journal import SUFFIX, LedgerJournal, decode, encode
from calcifer.storage.ledger import SqlLedger
from calcifer.storage.recovery import replay_dead
from tests.storage.test_sql_ledger import row, stored

ROOT = Path(__file__).resolve().parents[2]


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + SUFFIX))


def dead_journal(directory: Path, rows: list[SpendRecord], tail: bytes = b"") -> Path:
    """A journal file as a killed process leaves it: its rows, maybe a cut last line, no lock."""
    journal = LedgerJournal.open(directory)
    for each in rows:
        journal.append(each)
    (path,) = files(directory)
    with path.open("ab") as file:
        file.write(tail)
    journal.keep()
    journal.close()
    return path


def test_a_row_round_trips_through_a_line() -> None:
    full = row(
        3,
        cost=Decimal("12345.678901234567"),
        cost_saved=Decimal("0.000000000001"),
        tags=("a", "b\nc"),
        time=datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=5))),
        streamed=True,
        outcome="refused_budget",
    )
    line = encode(full)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == full
    unpriced = row(4, cost=None, key_id=None)
    assert decode(encode(unpriced)) == unpriced
    assert decode(encode(unpriced)).cost is None


def test_lines_from_another_version_replay() -> None:
    newer = encode(row(1))[:-2] + b',"a field added later"]\n'
    assert decode(newer) == row(1)
    full = row(2, attempts=2, deployments="a/m", ttfb_ms=40)
    older = encode(full).rsplit(b",", 3)[0] + b"]\n"  # written before the last three fields existed
    assert decode(older) == row(2)
    assert decode(encode(full)) == full


def test_appends_one_line_per_row_and_empties_when_all_are_done(tmp_path: Path) -> None:
    journal = LedgerJournal.open(tmp_path)
    (path,) = files(tmp_path)
    for n in range(3):
        journal.append(row(n))
    assert [decode(line) for line in path.read_bytes().splitlines()] == [row(0), row(1), row(2)]
    journal.done(2)
    assert path.stat().st_size > 0 and journal.pending == 1
    journal.done(1)
    assert path.stat().st_size == 0 and journal.pending == 0
    journal.append(row(7))
    assert [decode(line) for line in path.read_bytes().splitlines()] == [row(7)]
    journal.done(1)
    journal.close()
    assert files(tmp_path) == []


def test_rotates_segments_and_deletes_one_once_its_rows_are_done(tmp_path: Path) -> None:
    line = len(encode(row(0)))
    journal = LedgerJournal.open(tmp_path, segment_bytes=3 * line)
    for n in range(4):
        journal.append(row(n))
    journal.done(1)  # the first segment passed its size: a new one takes the next rows
    first, second = files(tmp_path)
    journal.append(row(4))
    assert [decode(x).request_id for x in second.read_bytes().splitlines()] == ["req-4"]
    journal.done(2)
    assert files(tmp_path) == [first, second]  # req-3 of the first is still queued
    journal.done(1)
    assert files(tmp_path) == [second] and journal.pending == 1
    journal.close()  # a row not done: the file stays for a replay
    assert files(tmp_path) == [second]


async def test_the_writer_trims_the_journal_and_a_graceful_close_removes_it(
    db: Database, tmp_path: Path
) -> None:
    ledger = SqlLedger(db, journal=LedgerJournal.open(tmp_path))
    await ledger.start()
    for n in range(5):
        ledger.record(row(n))
    (path,) = files(tmp_path)
    assert len(path.read_bytes().splitlines()) == 5  # in the file before any batch is written
    await ledger.flush()
    assert path.stat().st_size == 0
    ledger.record(row(5))
    await ledger.aclose()
    assert files(tmp_path) == [] and len(await stored(db)) == 6


async def test_replays_a_dead_journal_once_skipping_rows_in_the_ledger(db: Database, tmp_path: Path) -> None:
    earlier = SqlLedger(db)
    await earlier.start()
    earlier.record(row(1))
    earlier.record(row(2, request_id="reused"))
    await earlier.aclose()
    # The dead process wrote req-1 before it died, not req-3 nor its own "reused" (a client reused the id).
    dead = [row(1), row(3, cost=None), row(4, request_id="reused")]
    dead_journal(tmp_path, dead)
    ledger = SqlLedger(db, journal=LedgerJournal.open(tmp_path))
    await ledger.start()  # replays, and waits until the replayed rows are written
    assert [r["request_id"] for r in await stored(db)] == ["req-1", "reused", "req-3", "reused"]
    report = await ledger.query("key", T_START, T_END)
    assert report.total.requests == 4 and report.total.unpriced == 1
    assert report.total.cost == 3 * row(0).cost  # type: ignore[operator]
    await ledger.aclose()
    assert files(tmp_path) == []
    again = SqlLedger(db, journal=LedgerJournal.open(tmp_path))
    await again.start()
    await again.aclose()
    assert len(await stored(db)) == 4


async def test_a_cut_last_line_is_skipped_counted_and_logged_without_its_content(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret_looking = "sk-cut-line-content"
    dead_journal(tmp_path, [row(1), row(2)], tail=encode(row(3, key_id=secret_looking))[:40])
    journal = LedgerJournal.open(tmp_path)
    recorded: list[SpendRecord] = []
    with caplog.at_level(logging.WARNING, logger="calcifer.ledger"):
        replayed = await replay_dead(journal, db, recorded.append)
    assert [r.request_id for r in recorded] == ["req-1", "req-2"]
    assert (replayed.files, replayed.rows, replayed.corrupt) == (1, 2, 1)
    assert "1 line(s) that do not decode" in caplog.text
    assert secret_looking not in caplog.text and '"request_id"' not in caplog.text
    journal.close()


_LIVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from calcifer.storage.journal import LedgerJournal
    from tests.storage.test_sql_ledger import row
    journal = LedgerJournal.open(Path(sys.argv[1]))
    journal.append(row(1))
    journal.append(row(2))
    print("ready", flush=True)
    time.sleep(120)
    """
)


async def test_a_live_process_journal_is_left_alone_and_replayed_once_it_is_killed(
    db: Database, tmp_path: Path
) -> None:
    live = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LIVE, str(tmp_path), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert live.stdout is not None and await live.stdout.readline() == b"ready\n"
        journal = LedgerJournal.open(tmp_path)
        recorded: list[SpendRecord] = []
        replayed = await replay_dead(journal, db, recorded.append)
        assert (replayed.files, recorded) == (0, [])
        assert len(files(tmp_path)) == 2
        live.send_signal(signal.SIGKILL)
        await live.wait()
        replayed = await replay_dead(journal, db, recorded.append)
        assert [r.request_id for r in recorded] == ["req-1", "req-2"] and replayed.files == 1
        assert files(tmp_path) == [path for path in files(tmp_path) if journal.owns(path)]
        journal.close()
    finally:
        if live.returncode is None:
            live.kill()
            await live.wait()


def test_a_failed_append_is_counted_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = LedgerJournal.open(tmp_path)
    (path,) = files(tmp_path)
    segment = journal._segments[-1]
    os.close(segment.fd)  # a descriptor that cannot write: the append fails as on a full disk
    segment.fd = os.open(path, os.O_RDONLY)
    with caplog.at_level(logging.ERROR, logger="calcifer.ledger"):
        journal.append(row(1))
    assert journal.failed == 1 and journal.pending == 1 and "could not be appended" in caplog.text
    journal.done(1)
    journal.close()


T_START = datetime(2026, 3, 1, tzinfo=UTC)
T_END = T_START + timedelta(days=1)
