"""Time to first byte of a stream: the time from sending a request to reading its first SSE `data:`
line, over raw keep-alive sockets (no client library between the clock and the wire)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

REQUEST_TIMEOUT = 10.0  # seconds for one stream (the paced one takes ~0.24 s)


@dataclass(slots=True)
class StreamTimings:
    ttfb_ms: list[float] = field(default_factory=list)  # first `data:` line
    total_ms: list[float] = field(default_factory=list)  # last byte of the response
    events: list[int] = field(default_factory=list)  # `data:` lines per response
    errors: int = 0
    last_error: str = ""  # what the last failure was, for the report


def build_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench\r\nAccept: text/event-stream\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _header_value(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().lower()
    return None


async def read_response(reader: asyncio.StreamReader, started: float) -> tuple[int, float | None, bytes]:
    """Status, seconds to the first `data:` line (None if there was none) and the decoded body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    body = bytearray()
    first: float | None = None
    length = _header_value(head, b"content-length")
    if length is not None:
        body += await reader.readexactly(int(length))
        first = time.perf_counter() - started if b"data:" in body else None
        return status, first, bytes(body)
    if _header_value(head, b"transfer-encoding") != b"chunked":
        raise ValueError("the response has neither a content-length nor chunked encoding")
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # the empty trailer
            return status, first, bytes(body)
        body += (await reader.readexactly(size + 2))[:-2]
        if first is None and b"data:" in body:
            first = time.perf_counter() - started


async def _worker(
    host: str, port: int, request: bytes, deadline: float, limit: int, timings: StreamTimings
) -> None:
    """Streams back to back on one keep-alive connection; after a failure (counted), a new connection."""
    while time.perf_counter() < deadline and len(timings.total_ms) < limit:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), REQUEST_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            timings.errors += 1
            timings.last_error = f"connect: {exc!r}"
            await asyncio.sleep(0.1)
            continue
        try:
            while time.perf_counter() < deadline and len(timings.total_ms) < limit:
                started = time.perf_counter()
                writer.write(request)
                status, first, body = await asyncio.wait_for(read_response(reader, started), REQUEST_TIMEOUT)
                done = time.perf_counter() - started
                if status != 200 or first is None or not body.rstrip().endswith(b"data: [DONE]"):
                    timings.errors += 1
                    timings.last_error = f"status {status}, body ending {body[-120:]!r}"
                    continue
                timings.ttfb_ms.append(first * 1000)
                timings.total_ms.append(done * 1000)
                timings.events.append(body.count(b"data:"))
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            TimeoutError,
        ) as exc:
            timings.errors += 1
            timings.last_error = repr(exc)
        finally:
            writer.close()


async def measure(
    host: str, port: int, path: str, body: bytes, *, concurrency: int, seconds: float, limit: int = 10**9
) -> StreamTimings:
    """Stream over `concurrency` connections, back to back, until `seconds` pass or `limit` responses."""
    timings = StreamTimings()
    request = build_request(host, port, path, body)
    deadline = time.perf_counter() + seconds
    workers = [_worker(host, port, request, deadline, limit, timings) for _ in range(concurrency)]
    await asyncio.wait_for(asyncio.gather(*workers), timeout=seconds + 2 * REQUEST_TIMEOUT)
    return timings
