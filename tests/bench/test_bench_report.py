"""Percentiles, the issue-5 target checks and the markdown table, from a results document."""

from __future__ import annotations

from typing import Any

from bench.compare import table
from bench.report import markdown, targets
from bench.scenarios import percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) == 0.0


def _side(rps: float, p50: float, p99: float, cpu: float | None = None, errors: int = 0) -> dict[str, Any]:
    side: dict[str, Any] = {"rps": rps, "p50": p50, "p90": p50, "p99": p99, "errors": errors}
    if cpu is not None:
        side |= {"cpu_ms_per_request": cpu, "peak_rss_mb": 70.0}
    return side


def _results() -> dict[str, Any]:
    return {
        "meta": {
            "label": "calcifer",
            "started": "2026-11-27 14:00",
            "wall_seconds": 60.0,
            "machine": {"nproc": 2, "cpu_model": "AMD EPYC", "kernel": "6.1"},
            "python": "3.11.7",
            "loadavg_before": "0.1 0.1 0.1",
            "loadavg_after": "1.0 0.5 0.2",
            "commit": "abc1234",
            "command": "python -m bench.run --quick",
        },
        "gateways": {"/": {"processes": 1, "idle_rss_mb": 85.0, "peak_rss_mb": 90.0}},
        "scenarios": [
            {
                "name": "json-c1",
                "title": "non-streamed, 1 connection",
                "direct": _side(9000, 0.1, 0.2),
                "gateway": _side(2000, 0.5, 2.5, cpu=0.4),
                "added_ms": {"p50": 0.4, "p90": 0.4, "p99": 2.3},
                "throughput_ratio": 0.222,
            },
            {
                "name": "delay-c1000",
                "title": "1000 connections",
                "direct": _side(9000, 100, 120),
                "gateway": _side(3000, 300, 900, cpu=0.3, errors=2),
                "added_ms": {"p50": 200, "p90": 200, "p99": 780},
                "throughput_ratio": 0.333,
            },
        ],
    }


def test_targets_are_checked_against_the_issue_goals_and_unrun_ones_say_so() -> None:
    rows = {row["target"]: row for row in targets(_results())}
    assert rows["Added latency p50, 1 connection"]["met"] is True
    assert rows["Added latency p99, 1 connection"]["met"] is False
    assert rows["1000 conn. vs 100 ms upstream: share of direct"]["met"] is True
    assert rows["1000 conn.: errors + timeouts"] == {
        "target": "1000 conn.: errors + timeouts", "goal": "0", "value": 2.0, "met": False
    }  # fmt: skip
    assert rows["Idle RSS (MB)"]["met"] is False
    assert rows["Requests/s, 32 connections"]["met"] is None
    assert rows["RSS growth over the soak (MB)"]["value"] is None


def test_the_markdown_has_a_row_per_scenario_and_the_target_verdicts() -> None:
    results = _results()
    results["targets"] = targets(results)
    text = markdown(results)
    assert "| json-c1 (non-streamed, 1 connection) | 9,000 | 2,000 | 0.22 | 0.10 / 0.10 / 0.20 |" in text
    assert "| 0.50 / 0.50 / 2.50 | 0.40 / 2.30 | 0.400 | 70.0 | 0 |" in text
    assert "| Added latency p99, 1 connection | ≤ 2 ms | 2.300 | **no** |" in text
    assert "| Requests/s, 32 connections | ≥ 4000 | – | not run |" in text
    assert "commit `abc1234`" in text


def test_compare_puts_runs_side_by_side_with_a_dash_for_what_a_run_lacks() -> None:
    calcifer, bare = _results(), _results()
    bare["meta"] = {**bare["meta"], "label": "bare-uvicorn-aiohttp", "started": "2026-11-27 14:05"}
    bare["scenarios"][0]["added_ms"] = {"p50": 0.25, "p90": 0.3, "p99": 1.5}
    text = table([calcifer, bare])
    assert text.splitlines()[0] == "| | calcifer (14:00 UTC) | bare-uvicorn-aiohttp (14:05 UTC) |"
    assert "| added p50 / p99 ms, 1 conn. | 0.40 / 2.30 | 0.25 / 1.50 |" in text
    assert "| 1000 conn.: errors | 2 | 2 |" in text
    assert "| req/s, non-streamed, 32 conn. | – | – |" in text
    assert "| idle RSS MB | 85.0 | 85.0 |" in text
