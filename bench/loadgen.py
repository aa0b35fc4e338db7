"""wrk, the load generator: installed from Debian when missing, driven with `wrk/post.lua`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

POST_SCRIPT = Path(__file__).parent / "wrk" / "post.lua"
_MARK = "BENCH_JSON "
_THREAD_DONE = "BENCH_THREAD_DONE"


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    errors: dict[str, int]  # connect, read, write, status (HTTP >= 400), timeout
    latency_ms: dict[str, float]  # min, mean, max, p50, p90, p99, p999

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def parse_wrk_output(text: str) -> LoadResult:
    """The result line that `post.lua`'s `done()` prints, among wrk's own report."""
    for line in text.splitlines():
        if line.startswith(_MARK):
            raw = json.loads(line[len(_MARK) :])
            return LoadResult(
                requests=int(raw["requests"]),
                seconds=raw["duration_us"] / 1e6,
                errors={k: int(v) for k, v in raw["errors"].items()},
                latency_ms={k: v / 1000.0 for k, v in raw["latency_us"].items()},
            )
    raise ValueError(f"wrk printed no result line (is the Lua script loaded?):\n{text[-2000:]}")


def ensure_wrk() -> str:
    """The path of `wrk`, installing Debian's package when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("wrk is not installed and apt-get is not available: install wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run([*sudo, apt, "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, apt, "install", "-y", "-qq", "wrk"], check=True, env=env)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def run_wrk(
    url: str,
    body_file: Path,
    *,
    connections: int,
    seconds: float,
    max_requests: int = 0,
    timeout: float = 10.0,
) -> LoadResult:
    """POST `body_file` to `url` over `connections` keep-alive connections for `seconds` (or until
    about `max_requests` responses), with as many wrk threads as cores allow."""
    threads = max(1, min(connections, os.cpu_count() or 1))
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(body_file),
        "BENCH_MAX_REQUESTS": str(max_requests),
        "BENCH_THREADS": str(threads),
    }
    command = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        str(POST_SCRIPT),
        url,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    output, finished = [], 0
    for line in process.stdout:  # bounded by wrk's own -d
        output.append(line)
        if line.startswith(_THREAD_DONE):
            finished += 1
            if finished == threads:
                process.send_signal(signal.SIGINT)  # wrk then joins its threads and reports
    errors = process.stderr.read()
    if process.wait(timeout=30) != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {errors.strip() or ''.join(output)[-2000:]}")
    return parse_wrk_output("".join(output))
