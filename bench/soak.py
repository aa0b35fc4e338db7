"""Soak: mixed traffic against a real `calcifer serve` for a long while, its RSS sampled throughout.

The mix, per ten requests: four JSON answers, a stream read to its end, a stream the client drops after
its first event, a 256 KiB body, a dated model name never seen before (routed by its family), an
unknown model name (404), and a virtual key past its budget (429); every fiftieth slot a client that
sends half a body and goes away. The upstream is `bench.upstream` (a fake OpenAI). After the warm-up,
RSS is fitted against the count of requests by least squares: the slope is reported in MB per 100k
requests (a leak shows as a steady slope; the gateway's target is at most 1 MB per 100k).

    python -m bench.soak --minutes 30 [--warmup 5] [--concurrency 16] [--json bench/results/soak.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import httpx2 as httpx

from bench.inprocess import free_port, start_upstream
from bench.procstat import sample

MASTER = "mk-soak-master-key-0123456789abcdef"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
LARGE = {**BODY, "messages": [{"role": "user", "content": "x" * 256 * 1024}]}


@dataclass
class Soak:
    url: str
    port: int
    budget_key: str
    done: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (seconds, requests, rss bytes)

    def count(self, status: int) -> None:
        self.done += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def _one(soak: Soak, client: httpx.AsyncClient, slot: int) -> None:
    kind = slot % 10
    if slot % 50 == 49:  # half a body, then gone
        _reader, writer = await asyncio.open_connection("127.0.0.1", soak.port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + MASTER.encode()
            + b'\r\nContent-Length: 5000\r\n\r\n{"model":'
        )
        await writer.drain()
        writer.close()
        soak.count(499)
        return
    headers = {"authorization": f"Bearer {soak.budget_key if kind == 9 else MASTER}"}
    body: dict[str, object] = BODY
    if kind in (4, 5):
        body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            async for _ in response.aiter_raw():
                if kind == 5:
                    break  # the client goes away mid-stream
            soak.count(response.status_code if kind == 4 else 499)
        return
    if kind == 6:
        body = LARGE
    elif kind == 7:
        body = {**BODY, "model": f"gpt-4o-audio-preview-{slot:08d}"}  # a new dated name of a family
    elif kind == 8:
        body = {**BODY, "model": f"no-such-model-{slot}"}
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    soak.count(response.status_code)


async def _worker(soak: Soak, client: httpx.AsyncClient, slots: list[int], until: float) -> None:
    while time.monotonic() < until:
        slots[0] += 1
        try:
            await _one(soak, client, slots[0])
        except httpx.HTTPError:
            soak.count(0)


async def _sampler(soak: Soak, pid: int, until: float, every: float) -> None:
    start = time.monotonic()
    while time.monotonic() < until:
        soak.samples.append((time.monotonic() - start, soak.done, sample(pid).rss_bytes))
        await asyncio.sleep(every)


def slope_mb_per_100k(points: list[tuple[float, int, int]]) -> float:
    """Least-squares slope of RSS against requests, in MB per 100,000 requests."""
    n = len(points)
    if n < 2:
        return float("nan")
    mean_x = sum(p[1] for p in points) / n
    mean_y = sum(p[2] for p in points) / n
    var = sum((p[1] - mean_x) ** 2 for p in points)
    if var == 0:
        return float("nan")
    cov = sum((p[1] - mean_x) * (p[2] - mean_y) for p in points)
    return cov / var * 100_000 / 1e6


async def run(minutes: float, warmup: float, concurrency: int, soak: Soak, pid: int) -> None:
    until = time.monotonic() + minutes * 60
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=soak.url, timeout=60, limits=limits) as client:
        slots = [0]
        await asyncio.gather(
            _sampler(soak, pid, until, every=max(1.0, minutes * 60 / 400)),
            *(_worker(soak, client, slots, until) for _ in range(concurrency)),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="minutes left out of the fit")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--json", help="write the samples and the result here")
    args = parser.parse_args(argv)
    upstream_port, port = free_port(), free_port()
    upstream = start_upstream(upstream_port)
    tmp = tempfile.mkdtemp(prefix="calcifer-soak-")
    env = {
        **os.environ,
        "SERVER_PORT": str(port),
        "OPENAI_API_KEY": "sk-soak",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
        "CALCIFER_MASTER_KEY": MASTER,
        "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
        "CALCIFER_LOG_LEVEL": "error",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "calcifer", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not become ready")
            time.sleep(0.1)
        created = httpx.post(
            url + "/admin/keys",
            json={"name": "soak-budget", "max_budget": 0.000001},
            headers={"authorization": f"Bearer {MASTER}"},
        )
        soak = Soak(url, port, created.json()["key"])
        asyncio.run(run(args.minutes, args.warmup, args.concurrency, soak, server.pid))
    finally:
        server.terminate()
        server.wait(30)
        upstream.kill()
    fitted = [p for p in soak.samples if p[0] >= args.warmup * 60]
    result = {
        "minutes": args.minutes,
        "warmup_minutes": args.warmup,
        "concurrency": args.concurrency,
        "requests": soak.done,
        "statuses": dict(sorted(soak.statuses.items())),
        "rss_start_mb": round(fitted[0][2] / 1e6, 2) if fitted else None,
        "rss_end_mb": round(fitted[-1][2] / 1e6, 2) if fitted else None,
        "slope_mb_per_100k_requests": round(slope_mb_per_100k(fitted), 3),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({**result, "samples": soak.samples}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
