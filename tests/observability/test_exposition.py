"""Multiprocess mode's files: a dead worker's counters and histograms are folded into the archive (no
count lost, totals never go backwards), its gauges deleted; the bearer check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from calcifer.observability.exposition import MULTIPROC_ENV, authorized, fold_dead, render
from tests.observability.scrape import Scrape

WORKER = """
from calcifer.http.middleware import RequestFacts
from calcifer.observability.metrics import GatewayMetrics
metrics = GatewayMetrics()
facts = RequestFacts("req", "POST", "/v1/chat/completions", 0.0, status=200, latency_ms=300.0)
facts.route = "/v1/chat/completions"
for _ in range({n}):
    metrics.finish(facts)
metrics.tally.inc()
"""


def _worker(directory: Path, n: int) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    subprocess.run([sys.executable, "-c", WORKER.format(n=n)], env=env, check=True, timeout=60)


def test_dead_workers_files_are_folded_into_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _worker(tmp_path, 3)
    _worker(tmp_path, 4)
    assert len(list(tmp_path.glob("*.db"))) == 6  # counter, histogram, gauge for each of the two pids
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    from prometheus_client import CollectorRegistry

    first = Scrape(render(CollectorRegistry()).decode())
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db", "histogram_archive.db"]
    assert first.value("calcifer_requests_total", route="/v1/chat/completions", status="200") == 7
    assert first.value("calcifer_request_duration_seconds_count") == 7
    assert first.value("calcifer_request_duration_seconds_bucket", le="0.25") == 0
    assert first.value("calcifer_request_duration_seconds_bucket", le="0.5") == 7
    assert first.value("calcifer_requests_in_flight") == 0  # the dead workers' gauges are gone
    _worker(tmp_path, 5)
    second = Scrape(render(CollectorRegistry()).decode())
    assert second.value("calcifer_requests_total") == 12
    assert len(list(tmp_path.glob("*.db"))) == 2
    assert fold_dead(str(tmp_path)) == []


def test_the_bearer_check() -> None:
    assert authorized(None, None)
    assert authorized("t0ken", "Bearer t0ken") and authorized("t0ken", "bearer  t0ken ")
    assert not authorized("t0ken", None)
    assert not authorized("t0ken", "Basic t0ken")
    assert not authorized("t0ken", "Bearer t0ke")
