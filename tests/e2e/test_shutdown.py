"""SIGTERM under load: the gateway finishes what is in flight, and every answered request is in the ledger.

To make the shutdown drain matter, the test holds SQLite's write lock from the moment it sends SIGTERM
until `LOCK_HELD` seconds later: the ledger cannot write meanwhile, so the rows of every request that
finishes during the shutdown are still queued when the server closes, and must be written then.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
import uuid
from collections import Counter

import pytest

from tests.e2e.load import Sent, fire, ledger_rows, sqlite_url
from tests.e2e.process import GatewayProcess
from tests.fakes.openai_server import FakeOpenAI, Script

pytestmark = pytest.mark.timeout(120)

REQUESTS = 300
CONCURRENCY = 24
SIGTERM_AFTER = 40  # answers before the signal
UPSTREAM_DELAY = 0.1  # per answer, and per chunk of a stream: requests are in flight when the signal comes
LOCK_HELD = 2.0  # seconds; longer than any request in flight at the signal takes to finish


async def test_sigterm_under_load_finishes_in_flight_requests_and_records_each(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script(*[Script(delay=UPSTREAM_DELAY) for _ in range(REQUESTS)])
    gateway = await asyncio.to_thread(
        GatewayProcess, {"OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": fake_openai.base_url}
    )
    run = uuid.uuid4().hex[:8]
    requests: list[tuple[Sent, dict[str, object]]] = []
    for i in range(REQUESTS):
        stream = i % 2 == 1
        body: dict[str, object] = {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": f"request {i}"}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        requests.append((Sent(f"shutdown-{run}-{i:04d}", gateway.url + "/v1/chat/completions", stream), body))

    signalled: list[float] = []
    lock = sqlite3.connect(sqlite_url(gateway).removeprefix("sqlite:///"), isolation_level=None, timeout=10)
    running_at_release: list[bool] = []

    def release() -> None:
        if lock.in_transaction:
            running_at_release.append(gateway.proc.poll() is None)
            lock.execute("COMMIT")

    def on_done(sent: Sent) -> None:
        done = sum(1 for s, _ in requests if s.ended)
        if not signalled and sent.status == 200 and done >= SIGTERM_AFTER:
            lock.execute("BEGIN IMMEDIATE")
            asyncio.get_running_loop().call_later(LOCK_HELD, release)
            signalled.append(time.monotonic())
            gateway.terminate()

    try:
        await fire(requests, None, concurrency=CONCURRENCY, timeout=60, on_done=on_done)
        code = await asyncio.to_thread(gateway.wait, 30)
    finally:
        release()
        lock.close()
        log = await asyncio.to_thread(gateway.stop)

    assert signalled, "the load ended before the signal was sent"
    # The gateway was still shutting down, waiting to write its ledger, when the lock was released.
    assert running_at_release == [True]
    assert code in (0, -signal.SIGTERM)
    sent = [s for s, _ in requests]
    answered = [s for s in sent if s.answered]
    in_flight = [s for s in answered if s.started < signalled[0] < s.ended]
    refused = [s for s in sent if not s.answered]
    # The signal came mid-load: requests were in flight, and the stopped gateway took no new ones (a
    # connection still being opened as it stopped may be refused or reset before it was read).
    assert len(in_flight) >= CONCURRENCY // 2, len(in_flight)
    assert refused and [s.started - signalled[0] for s in refused if s.started < signalled[0] - 0.5] == []
    # Every answer arrived whole, in-flight streams included: none was cut by the shutdown.
    assert Counter(s.status for s in answered) == {200: len(answered)}
    assert [s.request_id for s in answered if not s.complete()] == []
    assert all(s.echoed_id == s.request_id for s in answered)

    rows = await ledger_rows(sqlite_url(gateway))
    ids = Counter(row.request_id for row in rows)
    assert [rid for rid, n in ids.items() if n > 1] == []
    assert set(ids) == {s.request_id for s in answered}
    assert all(row.status == 200 and not row.cut_short and row.cost is not None for row in rows)
    assert "dropped" not in log and "Traceback" not in log
    print(
        f"\nshutdown: {len(sent)} sent, {len(answered)} answered ({len(in_flight)} in flight at SIGTERM), "
        f"{len(refused)} refused after it, {len(rows)} rows"
    )
