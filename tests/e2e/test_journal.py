"""A `calcifer serve` SIGKILLed mid-traffic loses no answered request: with CALCIFER_LEDGER_JOURNAL its
rows were journalled before they were queued, and the process started after it on the same directory
replays the ones its ledger never wrote. Every request the client got a full answer to has its row, once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.load import Sent, fire, ledger_rows
from tests.e2e.process import GatewayProcess

pytestmark = pytest.mark.timeout(120)

WORDS = "one two three four five six seven eight nine ten"


def _requests(url: str, count: int) -> list[tuple[Sent, dict[str, object]]]:
    requests = []
    for i in range(count):
        stream = i % 3 == 0
        body: dict[str, object] = {
            "model": "echo4",
            "messages": [{"role": "user", "content": WORDS}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        requests.append((Sent(f"journal-{i:04d}", url, stream), body))
    return requests


async def test_no_answered_request_is_lost_when_the_process_is_killed(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    env = {
        "CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path / 'calcifer.db'}",
        "CALCIFER_LEDGER_JOURNAL": str(journal),
    }
    first = await asyncio.to_thread(GatewayProcess, env)
    requests = _requests(first.url + "/v1/chat/completions", 1500)

    def kill_midway(_sent: Sent) -> None:
        if first.proc.returncode is None and sum(s.answered for s, _ in requests) >= 500:
            first.proc.kill()
            first.proc.wait()

    try:
        await fire(requests, None, concurrency=16, timeout=60, on_done=kill_midway)
    finally:
        first.proc.kill()
    assert first.wait(10) < 0  # killed, never shut down
    assert list(journal.glob("*.journal")), "the killed process left its journal"

    second = await asyncio.to_thread(GatewayProcess, env)  # ready once the replayed rows are written
    log = await asyncio.to_thread(second.stop)
    assert "dead process file(s) replayed" in log and "Traceback" not in log

    complete = {s.request_id for s, _ in requests if s.complete()}
    unanswered = [s for s, _ in requests if not s.answered]
    assert 400 <= len(complete) < len(requests) and unanswered, "the kill did not land mid-traffic"
    rows = Counter(row.request_id for row in await ledger_rows(env["CALCIFER_DATABASE_URL"]))
    assert sorted(complete - rows.keys()) == []
    assert [request_id for request_id, count in rows.items() if count > 1] == []
    assert list(journal.glob("*.journal")) == []  # the replayed file deleted, the second's own on exit
    replayed = next(line for line in log.splitlines() if "replayed" in line)
    print(f"\njournal: {len(complete)} answered before the SIGKILL, each in the ledger once; {replayed}")
