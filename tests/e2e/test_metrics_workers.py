"""`calcifer serve --workers 2`: any worker's `/metrics` reports every worker's requests together, and a
worker killed and replaced leaves no file behind but keeps its counts (folded into the archive)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx

from tests.e2e.process import GatewayProcess
from tests.observability.scrape import Scrape, scrape

BODY = {"model": "echo4", "messages": [{"role": "user", "content": "Hello there"}]}
CHAT = "/v1/chat/completions"


def _pids(directory: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("counter_*.db") if p.stem[-1].isdigit()}


def _requests(found: Scrape) -> float:
    return found.value("calcifer_requests_total", route=CHAT, status="200")


def test_two_workers_are_reported_together_and_a_dead_workers_files_fold(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    gateway = GatewayProcess({"CALCIFER_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(directory)})
    try:
        sent = 0
        deadline = time.monotonic() + 60
        while len(_pids(directory)) < 2 and time.monotonic() < deadline:  # until both workers answered
            with httpx.Client() as client:  # a new connection each time: either worker may take it
                assert client.post(gateway.url + CHAT, json=BODY, timeout=10).status_code == 200
            sent += 1
        assert len(_pids(directory)) == 2
        scrapes = [scrape(gateway.url + "/metrics") for _ in range(6)]
        assert {_requests(found) for found in scrapes} == {sent}  # whichever worker answered the scrape
        victim = min(_pids(directory))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the supervisor starts a new worker
            try:
                with httpx.Client() as client:
                    client.post(gateway.url + CHAT, json=BODY, timeout=10)
                sent += 1
            except httpx.TransportError:
                pass
            if len(_pids(directory) - {victim}) == 2:
                break
        after = scrape(gateway.url + "/metrics")
        assert _requests(after) == sent  # nothing the dead worker counted was lost
        assert victim not in _pids(directory)
        assert not list(directory.glob(f"*_{victim}.db"))
        assert (directory / "counter_archive.db").exists()
        cost = Decimal(str(after.value("calcifer_cost_usd_total")))
    finally:
        gateway.stop()
    with sqlite3.connect(f"{gateway.tmp}/calcifer.db") as db:
        (pico,) = db.execute("SELECT SUM(cost) FROM spend WHERE status = 200").fetchone()
    # The ledger writes within 50 ms of a request; the worker was killed after several scrapes. Prometheus
    # values are binary floats: the sum of many costs matches the ledger's exact one to 1e-12.
    assert cost > 0
    assert abs(Decimal(pico).scaleb(-12) - cost) < Decimal("1e-12")
