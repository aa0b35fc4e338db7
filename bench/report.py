"""The results as JSON and as a markdown table, with the targets of issue 5 §2 beside them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Check = tuple[str, str, Callable[[dict[str, Any]], float | None], Callable[[float], bool]]


def _scenario(results: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in results["scenarios"] if s["name"] == name), None)


def _get(name: str, *path: str) -> Callable[[dict[str, Any]], float | None]:
    def pick(results: dict[str, Any]) -> float | None:
        node: Any = _scenario(results, name)
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return float(node) if isinstance(node, int | float) else None

    return pick


def _idle(results: dict[str, Any]) -> float | None:
    gateway = results["gateways"].get("/")
    return float(gateway["idle_rss_mb"]) if gateway else None


TARGETS: list[Check] = [
    ("CPU per non-streamed request, 32 conn.", "≤ 0.35 ms",
     _get("json-c32", "gateway", "cpu_ms_per_request"), lambda v: v <= 0.35),
    ("Added latency p50, 1 connection", "≤ 0.5 ms", _get("json-c1", "added_ms", "p50"), lambda v: v <= 0.5),
    ("Added latency p99, 1 connection", "≤ 2 ms", _get("json-c1", "added_ms", "p99"), lambda v: v <= 2.0),
    ("Added TTFB p50, paced stream, 1 conn.", "≤ 1 ms", _get("ttfb-c1", "added_ms", "p50"),
     lambda v: v <= 1.0),
    ("Requests/s, 32 connections", "≥ 4000", _get("json-c32", "gateway", "rps"), lambda v: v >= 4000),
    ("1000 conn. vs 100 ms upstream: share of direct", "≥ 0.30", _get("delay-c1000", "throughput_ratio"),
     lambda v: v >= 0.30),
    ("1000 conn.: errors + timeouts", "0", _get("delay-c1000", "gateway", "errors"), lambda v: v == 0),
    ("Idle RSS (MB)", "≤ 80", _idle, lambda v: v <= 80),
    ("RSS growth over the soak (MB)", "≤ 10", _get("soak", "gateway", "rss_growth_mb"), lambda v: v <= 10),
]  # fmt: skip


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for label, goal, pick, ok in TARGETS:
        value = pick(results)
        rows.append(
            {"target": label, "goal": goal, "value": value, "met": None if value is None else ok(value)}
        )
    return rows


def _num(value: Any, digits: int = 2) -> str:
    """A table cell: '–' for nothing, thousands separators from 100 up, else `digits` decimals."""
    if value is None:
        return "–"
    if isinstance(value, int) or digits == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _lat(side: dict[str, Any] | None) -> str:
    if not side:
        return "–"
    return " / ".join(_num(float(side[k])) for k in ("p50", "p90", "p99"))


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Benchmark: {meta['label']}",
        "",
        f"Taken {meta['started']} (UTC), {meta['wall_seconds']:.0f} s, on {meta['machine']['cpu_model']}, "
        f"{meta['machine']['nproc']} cores, kernel {meta['machine']['kernel']}, Python {meta['python']} "
        f"(10M-addition loop: {meta['machine'].get('python_loop_ms', '?')} ms); "
        f"load average {meta['loadavg_before']} before, {meta['loadavg_after']} after; commit "
        f"`{meta['commit']}`.",
        "",
        f"Command: `{meta['command']}`",
        "",
        "Latencies in ms (for `ttfb-*`: time to the first SSE `data:` line). *Added* = through the gateway "
        "minus direct to the upstream, in the same run. CPU = utime+stime of the gateway's process tree per "
        "request; RSS = VmRSS summed over the tree.",
        "",
        "| Scenario | Direct req/s | Gateway req/s | Share | Direct p50/p90/p99 | Gateway p50/p90/p99 "
        "| Added p50 / p99 | CPU ms/req | Peak RSS MB | Errors |",
        "|---|---:|---:|---:|---|---|---|---:|---:|---:|",
    ]
    for s in results["scenarios"]:
        d, g, added = s["direct"], s["gateway"], s.get("added_ms")
        lines.append(
            f"| {s['name']} ({s['title']}) | {_num(d['rps'], 0) if d else '–'} | {_num(g['rps'], 0)} "
            f"| {_num(s.get('throughput_ratio'))} | {_lat(d)} | {_lat(g)} "
            f"| {(_num(added['p50']) + ' / ' + _num(added['p99'])) if added else '–'} "
            f"| {_num(g['cpu_ms_per_request'], 3)} | {_num(g['peak_rss_mb'], 1)} | {g['errors']} |"
        )
    lines += [
        "",
        "| Gateway process (by upstream behaviour) | Idle RSS MB | Idle CPU % | Peak RSS MB (VmHWM) |",
        "|---|---:|---:|---:|",
    ]
    for prefix, gw in results["gateways"].items():
        lines.append(
            f"| `{prefix}` ({gw['processes']} process(es)) | {gw['idle_rss_mb']} "
            f"| {gw.get('idle_cpu_percent', '–')} | {gw['peak_rss_mb']} |"
        )
    for failure in results.get("failures", []):
        lines.append(f"| {failure['name']} ({failure['title']}) | **failed**: `{failure['error']}` |")
    soak = _scenario(results, "soak")
    if soak:
        g = soak["gateway"]
        lines += [
            "",
            f"Soak: {g['requests']:,} of {g['target_requests']:,} requests in {g['seconds']} s; RSS "
            f"{g['rss_before_mb']} MB before, {g['rss_after_mb']} MB after: growth {g['rss_growth_mb']} MB.",
        ]
    lines += ["", "| Target (issue 5 §2) | Goal | Measured | Met |", "|---|---|---:|---|"]
    for row in results["targets"]:
        met = {True: "yes", False: "**no**", None: "not run"}[row["met"]]
        lines.append(f"| {row['target']} | {row['goal']} | {_num(row['value'], 3)} | {met} |")
    return "\n".join(lines) + "\n"
