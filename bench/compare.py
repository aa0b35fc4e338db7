"""`python -m bench.compare bench/results/A.json B.json ...`: key numbers of several runs side by side,
as a markdown table (for bench/README.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Row = tuple[str, Callable[[dict[str, Any]], Any]]


def _pick(name: str, *path: str) -> Callable[[dict[str, Any]], Any]:
    def pick(results: dict[str, Any]) -> Any:
        node: Any = next((s for s in results["scenarios"] if s["name"] == name), None)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    return pick


ROWS: list[Row] = [
    ("CPU ms/request, non-streamed, 32 conn.", _pick("json-c32", "gateway", "cpu_ms_per_request")),
    ("CPU ms/request, fast stream, 32 conn.", _pick("stream-c32", "gateway", "cpu_ms_per_request")),
    ("req/s, non-streamed, 1 conn.", _pick("json-c1", "gateway", "rps")),
    ("req/s, non-streamed, 32 conn.", _pick("json-c32", "gateway", "rps")),
    ("req/s, non-streamed, 256 conn.", _pick("json-c256", "gateway", "rps")),
    ("req/s, fast stream, 32 conn.", _pick("stream-c32", "gateway", "rps")),
    ("added p50 / p99 ms, 1 conn.", lambda r: _pair(_pick("json-c1", "added_ms")(r))),
    ("added TTFB p50 ms, paced, 1 conn.", _pick("ttfb-c1", "added_ms", "p50")),
    ("added TTFB p50 ms, paced, 32 conn.", _pick("ttfb-c32", "added_ms", "p50")),
    ("1000 conn. vs 100 ms upstream: share of direct", _pick("delay-c1000", "throughput_ratio")),
    ("1000 conn.: errors", _pick("delay-c1000", "gateway", "errors")),
    ("idle RSS MB", lambda r: (r["gateways"].get("/") or {}).get("idle_rss_mb")),
    ("machine: 10M-addition Python loop, ms", lambda r: r["meta"]["machine"].get("python_loop_ms")),
    (
        "load average before → after",
        lambda r: f"{r['meta']['loadavg_before']} → {r['meta']['loadavg_after']}",
    ),
]


def _pair(added: Any) -> str | None:
    return f"{added['p50']:.2f} / {added['p99']:.2f}" if isinstance(added, dict) else None


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return (
            f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"
        )
    return str(value)


def table(runs: list[dict[str, Any]]) -> str:
    heads = [f"{r['meta']['label']} ({r['meta']['started'][11:]} UTC)" for r in runs]
    lines = ["| | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(runs)]
    lines += [f"| {label} | " + " | ".join(_cell(pick(r)) for r in runs) + " |" for label, pick in ROWS]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    print(table([json.loads(Path(p).read_text()) for p in paths]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
