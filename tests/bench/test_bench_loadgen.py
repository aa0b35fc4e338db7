"""Reading wrk's report: the line `bench/wrk/post.lua` prints from `done()`."""

from __future__ import annotations

import pytest
from bench.loadgen import parse_wrk_output

WRK_STDOUT = """Running 3s test @ http://127.0.0.1:9100/v1/chat/completions
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   456.60us  300.01us   5.71ms   90.00%
  50006 requests in 659.05ms, 37.76MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  75876.34
Transfer/sec:     57.29MB
BENCH_JSON {"requests":50006,"duration_us":659046,"bytes":39590000,"errors":{"connect":0,"read":1,"write":0,\
"status":3,"timeout":2},"latency_us":{"min":22,"mean":456.6,"max":5708,"p50":386,"p90":679,"p99":2951,"p999":4646}}
"""


def test_the_result_line_gives_requests_rate_errors_and_latency_in_ms() -> None:
    result = parse_wrk_output(WRK_STDOUT)
    assert result.requests == 50006
    assert result.seconds == pytest.approx(0.659046)
    assert result.rps == pytest.approx(50006 / 0.659046)
    assert result.errors == {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 2}
    assert result.error_count == 6
    assert result.latency_ms["p50"] == pytest.approx(0.386)
    assert result.latency_ms["p99"] == pytest.approx(2.951)
    assert result.latency_ms["mean"] == pytest.approx(0.4566)


def test_output_without_the_result_line_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk_output(WRK_STDOUT.split("BENCH_JSON", maxsplit=1)[0])
