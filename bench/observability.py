"""`python -m bench.observability [KIND] [N] [ROUNDS]`: what metrics and traces cost, in CPU per request,
measured in one run beside each other with `bench.inprocess` (the app called in-process, 8 concurrent
callers, the fake upstream and an OTLP sink in child processes).

Configurations, interleaved round by round so that the machine's drift falls on all of them alike:
`off` (CALCIFER_METRICS=off, no OTEL_*), `metrics` (the default), `tracing` (metrics off, every request
traced: OTLP/HTTP export to `bench.otlp_sink`, sampler always_on) and `both`. The report gives each
configuration's median and what metrics and tracing add to `off`. KIND is `json` (default) or `stream`.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.inprocess import free_port, measure, start_upstream

OFF = {"CALCIFER_METRICS": "off"}


def configurations(sink: str) -> dict[str, dict[str, str]]:
    tracing = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink,
        "OTEL_TRACES_SAMPLER": "always_on",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BSP_MAX_QUEUE_SIZE": "65536",  # no span dropped: every one is encoded and sent
    }
    return {"off": OFF, "metrics": {}, "tracing": {**OFF, **tracing}, "both": tracing}


def report(kind: str, requests: int, samples: dict[str, list[float]]) -> str:
    median = {name: statistics.median(values) for name, values in samples.items()}
    lines = [
        f"{kind}, {requests} requests per round, {len(samples['off'])} rounds (median, us CPU per request):"
    ]
    for name, value in median.items():
        added = "" if name == "off" else f"  (+{value - median['off']:.1f} us over off)"
        spread = f"[{min(samples[name]):.1f}..{max(samples[name]):.1f}]"
        lines.append(f"  {name:8} {value:7.1f} {spread}{added}")
    return "\n".join(lines)


def start_sink() -> tuple[str, subprocess.Popen[bytes]]:
    """`bench.otlp_sink` in a child process, once it accepts connections: its URL and the process."""
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.otlp_sink", "--port", str(port)])
    _wait_for(port)
    return f"http://127.0.0.1:{port}", sink


def timed(kind: str, requests: int, port: int, env: dict[str, str]) -> float:
    """CPU us per request of one configuration (`bench.inprocess.measure`, in a scratch directory)."""
    with tempfile.TemporaryDirectory() as scratch:
        return uvloop.run(measure(kind, requests, port, Path(scratch) / "bench.db", env))


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for process in processes:
        process.terminate()
        process.wait()


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    kind = args[0] if args else "json"
    if kind not in ("json", "stream"):
        print(__doc__, file=sys.stderr)
        return 2
    requests = int(args[1]) if len(args) > 1 else 4000
    rounds = int(args[2]) if len(args) > 2 else 5
    port = free_port()
    upstream = start_upstream(port)
    url, sink = start_sink()
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):
            for name, env in configurations(url).items():
                samples.setdefault(name, []).append(timed(kind, requests, port, env))
        print(report(kind, requests, samples))
    finally:
        stop(upstream, sink)
    return 0


if __name__ == "__main__":
    sys.exit(main())
