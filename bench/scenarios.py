"""The scenarios of issue 5 §1, each run against the upstream directly and through the gateway in the
same run, with the gateway's CPU time per request and its memory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from bench import loadgen, payloads, procstat, ttfb
from bench.targets import HOST, Server

MB = 1024 * 1024
CHAT = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Plan:
    seconds: float  # each wrk run (direct, then through the gateway)
    ttfb_seconds: float  # each time-to-first-byte run
    soak_requests: int
    soak_seconds: float  # the soak's time bound
    only: frozenset[str] | None  # scenario names to run (None: all)
    profile_dir: Path | None = None  # py-spy folded stacks of each wrk run through the gateway go here

    def wants(self, name: str) -> bool:
        return self.only is None or name in self.only


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    upstream: str  # the upstream behaviour: '' fast, '/paced', '/delay'
    connections: int
    stream: bool = False
    kind: str = "wrk"  # wrk | ttfb | soak


SCENARIOS = [
    Scenario("json-c1", "non-streamed, 1 connection", "", 1),
    Scenario("json-c32", "non-streamed, 32 connections", "", 32),
    Scenario("json-c256", "non-streamed, 256 connections", "", 256),
    Scenario("stream-c32", "fast 24-event stream, 32 connections", "", 32, stream=True),
    Scenario("soak", "soak, non-streamed, 32 connections", "", 32, kind="soak"),
    Scenario("ttfb-c1", "paced stream TTFB, 1 connection", "/paced", 1, stream=True, kind="ttfb"),
    Scenario("ttfb-c32", "paced stream TTFB, 32 connections", "/paced", 32, stream=True, kind="ttfb"),
    Scenario("delay-c1000", "1000 connections, upstream answers after 100 ms", "/delay", 1000),
]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def _side(result: loadgen.LoadResult) -> dict[str, Any]:
    return {
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "rps": round(result.rps, 1),
        **{k: round(result.latency_ms[k], 3) for k in ("p50", "p90", "p99", "max")},
        "errors": result.error_count,
        "error_detail": result.errors,
    }


def _compare(direct: dict[str, Any] | None, gateway: dict[str, Any]) -> dict[str, Any]:
    if direct is None:
        return {}
    added = {k: round(gateway[k] - direct[k], 3) for k in ("p50", "p90", "p99")}
    ratio = round(gateway["rps"] / direct["rps"], 3) if direct["rps"] else None
    return {"added_ms": added, "throughput_ratio": ratio}


class Runner:
    """Runs scenarios against one gateway process that fronts one upstream behaviour."""

    def __init__(self, upstream: Server, gateway: Server, bodies: dict[bool, Path], plan: Plan) -> None:
        self.upstream, self.gateway, self.bodies, self.plan = upstream, gateway, bodies, plan

    def _accounted(self, load: Callable[[], tuple[dict[str, Any], int]]) -> dict[str, Any]:
        """Run `load` (which returns its result and request count) and add the gateway's CPU time per
        request, its peak RSS, and the upstream's CPU time per request."""
        gw0, up0 = procstat.sample(self.gateway.pid), procstat.sample(self.upstream.pid)
        with procstat.PeakRss(self.gateway.pid) as peak:
            side, requests = load()
        gw1, up1 = procstat.sample(self.gateway.pid), procstat.sample(self.upstream.pid)
        per = 1000.0 / requests if requests else 0.0
        side["cpu_ms_per_request"] = round((gw1.cpu_seconds - gw0.cpu_seconds) * per, 4)
        side["upstream_cpu_ms_per_request"] = round((up1.cpu_seconds - up0.cpu_seconds) * per, 4)
        side["peak_rss_mb"] = round(peak.peak / MB, 1)
        side["rss_after_mb"] = round(gw1.rss_bytes / MB, 1)
        return side

    def warm_up(self, prefix: str) -> None:
        """Fill connection pools and caches; not reported. Paced streams are warmed with the TTFB client,
        which lets every stream finish: wrk would cut 32 of them when it stops, and a stream the client
        cuts short is a different path (Calcifer then estimates usage with a tokenizer)."""
        for stream in (False, True):
            body = self.bodies[stream]
            loadgen.run_wrk(self.upstream.url(prefix + CHAT), body, connections=32, seconds=1)
            if stream and prefix == "/paced":
                uvloop.run(
                    ttfb.measure(HOST, self.gateway.port, CHAT, body.read_bytes(), concurrency=32, seconds=1)
                )
            else:
                loadgen.run_wrk(self.gateway.url(CHAT), body, connections=32, seconds=1)

    def run(self, scenario: Scenario) -> dict[str, Any]:
        started = time.time()
        if scenario.kind == "ttfb":
            direct, gateway = self._ttfb(scenario)
        elif scenario.kind == "soak":
            direct, gateway = None, self._soak(scenario)
        else:
            direct, gateway = self._wrk(scenario)
        return {
            "name": scenario.name,
            "title": scenario.title,
            "connections": scenario.connections,
            "direct": direct,
            "gateway": gateway,
            **_compare(direct, gateway),
            "wall_seconds": round(time.time() - started, 1),
        }

    def _wrk(self, scenario: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
        body, seconds = self.bodies[scenario.stream], self.plan.seconds

        def through_gateway() -> tuple[dict[str, Any], int]:
            spy = self._profiler(scenario.name, seconds)
            result = loadgen.run_wrk(
                self.gateway.url(CHAT), body, connections=scenario.connections, seconds=seconds
            )
            if spy is not None:
                spy.wait(timeout=30)
            return _side(result), result.requests

        direct_url = self.upstream.url(scenario.upstream + CHAT)
        direct = _side(loadgen.run_wrk(direct_url, body, connections=scenario.connections, seconds=seconds))
        return direct, self._accounted(through_gateway)

    def _profiler(self, name: str, seconds: float) -> subprocess.Popen[bytes] | None:
        """py-spy sampling the gateway (not pausing it) for the run, when `--profile` asked for it."""
        if self.plan.profile_dir is None:
            return None
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        output = self.plan.profile_dir / f"{name}.folded"
        argv = [spy, "record", "--pid", str(self.gateway.pid), "--subprocesses", "--nonblocking",
                "--rate", "200", "--duration", str(max(1, int(seconds) - 1)), "--format", "raw",
                "--output", str(output)]  # fmt: skip
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _soak(self, scenario: Scenario) -> dict[str, Any]:
        before = procstat.sample(self.gateway.pid)

        def soak() -> tuple[dict[str, Any], int]:
            result = loadgen.run_wrk(
                self.gateway.url(CHAT),
                self.bodies[False],
                connections=scenario.connections,
                seconds=self.plan.soak_seconds,
                max_requests=self.plan.soak_requests,
            )
            return _side(result), result.requests

        side = self._accounted(soak)
        after = procstat.sample(self.gateway.pid)
        side["target_requests"] = self.plan.soak_requests
        side["rss_before_mb"] = round(before.rss_bytes / MB, 1)
        side["rss_growth_mb"] = round((after.rss_bytes - before.rss_bytes) / MB, 1)
        return side

    def _ttfb(self, scenario: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
        body = payloads.STREAM_REQUEST
        seconds, n = self.plan.ttfb_seconds, scenario.connections

        def measure(port: int, path: str) -> tuple[dict[str, Any], int]:
            timings = uvloop.run(ttfb.measure(HOST, port, path, body, concurrency=n, seconds=seconds))
            side = {
                "requests": len(timings.ttfb_ms),
                "rps": round(len(timings.ttfb_ms) / seconds, 1),
                **{f"p{p}": round(percentile(timings.ttfb_ms, p), 3) for p in (50, 90, 99)},
                "max": round(max(timings.ttfb_ms, default=0.0), 3),
                "stream_p50_ms": round(percentile(timings.total_ms, 50), 3),
                "events_per_stream": sorted(set(timings.events)),
                "errors": timings.errors,
                "last_error": timings.last_error,
            }
            return side, len(timings.ttfb_ms)

        direct, _ = measure(self.upstream.port, scenario.upstream + CHAT)
        return direct, self._accounted(lambda: measure(self.gateway.port, CHAT))


def run_all(
    upstream: Server,
    start_gateway: Callable[[str], Server],
    stop_gateway: Callable[[Server], None],
    bodies: dict[bool, Path],
    plan: Plan,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every planned scenario, one gateway process per upstream behaviour, in the order listed."""
    results: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    gateways: dict[str, dict[str, Any]] = {}
    for prefix in dict.fromkeys(s.upstream for s in SCENARIOS):
        planned = [s for s in SCENARIOS if s.upstream == prefix and plan.wants(s.name)]
        if not planned:
            continue
        gateway = start_gateway(prefix)
        try:
            settled = procstat.sample(gateway.pid)
            time.sleep(2.0)
            idle = procstat.sample(gateway.pid)
            idle_cpu = (idle.cpu_seconds - settled.cpu_seconds) / 2.0 * 100
            log(f"gateway for upstream '{prefix or '/'}' up: pid {gateway.pid}, {idle.rss_bytes / MB:.1f} MB")
            runner = Runner(upstream, gateway, bodies, plan)
            runner.warm_up(prefix)
            for scenario in planned:
                log(f"  {scenario.name}: {scenario.title} ...")
                try:
                    results.append(runner.run(scenario))
                except (RuntimeError, ValueError, OSError, TimeoutError, subprocess.SubprocessError) as exc:
                    failures.append({"name": scenario.name, "title": scenario.title, "error": repr(exc)})
                    log(f"  {scenario.name}: FAILED: {exc!r}")
                    continue
                log(f"  {scenario.name}: {_brief(results[-1])}")
            end = procstat.sample(gateway.pid)
            gateways[prefix or "/"] = {
                "pid": gateway.pid,
                "processes": idle.processes,
                "idle_rss_mb": round(idle.rss_bytes / MB, 1),
                "idle_cpu_percent": round(idle_cpu, 1),  # should be ~0: else CPU/request is inflated
                "peak_rss_mb": round(end.hwm_bytes / MB, 1),
            }
        finally:
            stop_gateway(gateway)
    return {"scenarios": results, "failures": failures, "gateways": gateways}


def _brief(result: dict[str, Any]) -> str:
    gw = result["gateway"]
    text = f"{gw['rps']:.0f} req/s, p50 {gw['p50']:.2f} ms, cpu {gw['cpu_ms_per_request']:.3f} ms/req"
    if result.get("added_ms"):
        text += f", +p50 {result['added_ms']['p50']:.2f} ms, ratio {result['throughput_ratio']}"
    return text + f", errors {gw['errors']}"
