"""`python -m bench.metrics_record [N]`: what recording one request's metrics costs, alone, in instructions.

A JSON chat completion's facts (200, an answer with usage and a cost, one attempt) are recorded N times
(default 20,000) by `GatewayMetrics` in one process, with the in-flight gauge's `inc` and `dec` around
each, as the ASGI app does. The script runs twice under `valgrind --tool=callgrind`, with N and with 0
iterations after the same set-up and warm-up; the difference divided by N is the instructions one request's
metrics cost (start-up, imports and the warm-up cancel out). Also runs a scrape of the registry at the end
of each run (so its cost, paid once per scrape, is the same in both). Needs `valgrind`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from bench.instructions import totals

WARM_UP = 1_000


def record(iterations: int) -> None:
    from prometheus_client import generate_latest

    from calcifer.domain.types import StreamOutcome, Usage
    from calcifer.http.middleware import RequestFacts
    from calcifer.observability.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    facts = RequestFacts("req-1", "POST", "/v1/chat/completions", 0.0)
    facts.status, facts.route, facts.latency_ms = 200, "/v1/chat/completions", 12.345
    facts.model, facts.provider = "gpt-4o-mini", "openai"
    facts.usage = Usage(prompt_tokens=21, completion_tokens=9)
    facts.cost = Decimal("0.00000855")
    facts.outcome = StreamOutcome(provider="openai", model="gpt-4o-mini", attempts=1, upstream_seconds=0.0111)
    tally, finish = metrics.tally, metrics.finish
    for _ in range(WARM_UP + iterations):
        tally.inc()
        tally.dec()
        finish(facts)
    generate_latest(metrics.registry)


def count(iterations: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                f"--log-file={Path(scratch) / 'valgrind.log'}",
                sys.executable,
                "-m",
                "bench.metrics_record",
                "--child",
                str(iterations),
            ],
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        return totals(out.read_text())


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        record(int(argv[1]))
        return 0
    iterations = int(argv[0]) if argv else 20_000
    base, counted = count(0), count(iterations)
    per = (counted - base) / iterations
    print(f"metrics of one JSON request: {per:,.0f} instructions (callgrind, N={iterations})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
