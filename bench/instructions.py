"""`python -m bench.instructions [KIND] [N] [ROUNDS] [CONFIGS]`: what metrics and traces cost, counted in
instructions per request by valgrind's callgrind, which other work on the machine does not change (timings
on a shared machine do: `bench.observability` needs many interleaved rounds for a steady median).

Each configuration of `bench.observability` (`off`, `metrics`, `tracing` at 100%, `both`) runs in a child
process under `valgrind --tool=callgrind --instr-atstart=no`. The child builds the app and warms it up
uninstrumented; the parent then turns counting on (`callgrind_control -i on PID`), the child answers N
requests (8 concurrent callers, as `bench.inprocess`) and flushes every span to the OTLP sink, and the
parent turns counting off. Every thread of the process is counted: the span exporter's encoding and
the ledger's writer too. Counts become microseconds through the instructions per microsecond of `off`,
timed natively (`bench.inprocess`, the fastest of ROUNDS runs, default 3: the least disturbed one).
CONFIGS, comma-separated (default: all four), counts only those beside `off` (e.g. `metrics`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import uvloop

from bench.inprocess import CONCURRENCY, free_port, measure, start_upstream
from bench.observability import OFF, configurations, start_sink, stop, timed
from calcifer.http.asgi import GatewayApp

POLL = 0.005


def _wait_file(path: Path, process: subprocess.Popen[bytes] | None = None, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the child exited ({process.returncode}) before {path.name}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {path.name} after {timeout:.0f} s")
        time.sleep(POLL)


@contextlib.contextmanager
def _counted(app: GatewayApp, signals: Path) -> Iterator[None]:
    """The child's side: tell the parent the warm-up is over and wait until it counts; afterwards flush the
    spans (their encoding and export are part of each request's cost) and wait until it stops."""
    (signals / "ready").touch()
    _wait_file(signals / "go")
    yield
    tracing = getattr(app.state, "tracing", None)
    if tracing is not None:
        tracing.provider.force_flush()
    (signals / "done").touch()
    _wait_file(signals / "stop")


def child(name: str, kind: str, requests: int, upstream_port: int, sink: str, signals: Path) -> None:
    env = configurations(sink)[name]
    if "OTEL_BSP_SCHEDULE_DELAY" in env:  # batches by size (512 spans), not by a timer valgrind slows
        env = {**env, "OTEL_BSP_SCHEDULE_DELAY": "5000"}
    with tempfile.TemporaryDirectory() as scratch:
        uvloop.run(
            measure(
                kind,
                requests,
                upstream_port,
                Path(scratch) / "bench.db",
                env,
                window=lambda app: _counted(app, signals),
            )
        )


def totals(callgrind_out: str) -> int:
    """The instructions a callgrind output file counted."""
    found = re.search(r"^totals: (\d+)", callgrind_out, re.MULTILINE)  # "summary:" is 0 when toggled
    if found is None:
        raise ValueError("no totals in the callgrind output")
    return int(found.group(1))


def count(name: str, kind: str, requests: int, upstream_port: int, sink: str) -> int:
    """Instructions per request of configuration `name`, counted under callgrind."""
    child_args = ["bench.instructions", "--child", name, kind, str(requests), str(upstream_port), sink]
    return counted(child_args, requests)


def counted(child_args: list[str], requests: int, keep: Path | None = None) -> int:
    """Instructions per request of `python -m CHILD_ARGS... SIGNALS`, a child that signals through the
    folder SIGNALS as `_counted` does, run under callgrind and counted between its signals; `keep`:
    where to copy callgrind's output (for `callgrind_annotate`)."""
    with tempfile.TemporaryDirectory() as scratch:
        signals = Path(scratch)
        out = signals / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            f"--log-file={signals / 'valgrind.log'}",
            sys.executable,
            "-m",
            *child_args,
            scratch,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set orders in every child
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env)
        try:
            _wait_file(signals / "ready", process)
            _control(process.pid, "on")
            (signals / "go").touch()
            _wait_file(signals / "done", process)
            _control(process.pid, "off")
            (signals / "stop").touch()
            if process.wait(timeout=600) != 0:
                raise RuntimeError(f"{child_args}: the child failed ({process.returncode})")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if keep is not None:
            shutil.copyfile(out, keep)
        return totals(out.read_text()) // _answered(requests)


def _control(pid: int, state: str) -> None:
    subprocess.run(["callgrind_control", "-i", state, str(pid)], check=True, stdout=subprocess.DEVNULL)


def _answered(requests: int) -> int:
    return max(1, requests // CONCURRENCY) * CONCURRENCY


def report(kind: str, requests: int, counts: dict[str, int], off_us: float) -> str:
    per_us = counts["off"] / off_us
    lines = [
        f"{kind}, {_answered(requests)} requests per configuration, instructions per request "
        f"(callgrind); off timed natively at {off_us:.1f} us CPU per request = {per_us:.0f} instructions/us:"
    ]
    for name, value in counts.items():
        added = "" if name == "off" else f"  (+{(value - counts['off']) / per_us:.1f} us over off)"
        lines.append(f"  {name:8} {value:10d} ~{value / per_us:7.1f} us{added}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        name, kind, count_, upstream_port, sink_url, signals = args[1:7]
        child(name, kind, int(count_), int(upstream_port), sink_url, Path(signals))
        return 0
    kind = args[0] if args else "json"
    if kind not in ("json", "stream") or shutil.which("valgrind") is None:
        print(__doc__, file=sys.stderr)
        return 2
    requests = int(args[1]) if len(args) > 1 else 400
    rounds = int(args[2]) if len(args) > 2 else 3
    chosen = {"off", *args[3].split(",")} if len(args) > 3 else None
    port = free_port()
    upstream = start_upstream(port)
    sink, sink_process = start_sink()
    try:
        counts = {}
        for name in configurations(sink):
            if chosen is not None and name not in chosen:
                continue
            counts[name] = count(name, kind, requests, port, sink)
            print(f"{name}: {counts[name]} instructions per request", file=sys.stderr, flush=True)
        native = min(timed(kind, requests, port, OFF) for _ in range(rounds))
        print(report(kind, requests, counts, native))
    finally:
        stop(upstream, sink_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
