"""`python -m bench.inprocess KIND [N]`: the gateway's own CPU per request, without a server or a
load generator on the same cores: the app is called in-process (ASGI scope, receive and send built here)
by 8 concurrent callers against `bench.upstream` in a child process, after a warm-up, and the process's
CPU time (`time.process_time`, the SQLite ledger's thread included) is divided by the requests.

KIND is `json` or `stream` (`/v1/chat/completions`), `responses` or `responses-stream` (`/v1/responses`
for an OpenAI model, relayed natively), `responses-translated` or `responses-translated-stream`
(`/v1/responses` for an OpenAI-compatible server of the config file, translated to chat completions
and back); `all` runs each in turn in one process, beside each other.

Steadier than `bench.run` for comparing two versions of the hot path run one after the other; it leaves
out what uvicorn and the sockets to the client cost, so it is not a result to quote against issue 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvloop
from starlette.types import Message

from bench import payloads
from calcifer.http.asgi import GatewayApp

CONCURRENCY = 8
WARM_UP = 50  # requests per caller before the clock starts

Headers = list[tuple[bytes, bytes]]
Prepare = Callable[[GatewayApp, bytes], Awaitable[tuple[Headers, bytes]]]
"""Called once the app has started, with the kind's body: the headers to add to every request and the
body to send instead (e.g. a virtual key created in the app's database, and a body naming a customer)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _lifespan(app: GatewayApp, messages: asyncio.Queue[Message]) -> asyncio.Task[None]:
    started = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message", "start-up failed"))

    await messages.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, messages.get, send))
    await started.wait()
    return task


# Each kind: the path it posts to and the body it sends.
KINDS = {
    "json": ("/v1/chat/completions", payloads.REQUEST),
    "stream": ("/v1/chat/completions", payloads.STREAM_REQUEST),
    "responses": ("/v1/responses", payloads.responses_request(payloads.MODEL, stream=False)),
    "responses-stream": ("/v1/responses", payloads.responses_request(payloads.MODEL, stream=True)),
    "responses-translated": (
        "/v1/responses",
        payloads.responses_request(payloads.COMPAT_MODEL, stream=False),
    ),
    "responses-translated-stream": (
        "/v1/responses",
        payloads.responses_request(payloads.COMPAT_MODEL, stream=True),
    ),
}


Window = Callable[[GatewayApp], contextlib.AbstractContextManager[object]]


async def measure(
    kind: str,
    requests: int,
    upstream_port: int,
    database: Path,
    extra_env: dict[str, str] | None = None,
    prepare: Prepare | None = None,
    window: Window | None = None,
) -> float:
    """CPU microseconds per request (`extra_env`: settings added to the gateway's environment;
    `prepare`: what each request carries beyond the kind's body, set up in the started app; `window`:
    a context entered after the warm-up and left once the measured requests are done)."""
    from calcifer.app import create_app
    from calcifer.config.settings import Settings

    env = dict(os.environ)
    config = database.with_suffix(".yaml")
    config.write_text(
        f"providers:\n  - name: compat\n    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        f"    models: [{payloads.COMPAT_MODEL}]\n"
        f"prices:\n  {payloads.COMPAT_MODEL}: {{input: 0.15, output: 0.60}}\n"
    )
    env.update(
        OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
        OPENAI_API_KEY="sk-bench",
        CALCIFER_DATABASE_URL=f"sqlite:///{database}",
        CALCIFER_CONFIG=str(config),
    )
    env.update(extra_env or {})
    app = create_app(Settings.from_env(env))
    messages: asyncio.Queue[Message] = asyncio.Queue()
    lifespan = await _lifespan(app, messages)
    path, body = KINDS[kind]
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    if prepare is not None:
        extra, body = await prepare(app, body)
        headers += extra
    headers.append((b"content-length", str(len(body)).encode()))
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def one() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "root_path": "",
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await never  # the client stays: a stream's disconnect watcher waits here
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"the gateway answered {message['status']}")

        await app(scope, receive, send)

    async def caller(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(caller(WARM_UP) for _ in range(CONCURRENCY)))
    per_caller = max(1, requests // CONCURRENCY)
    with window(app) if window is not None else contextlib.nullcontext():
        started = time.process_time()
        await asyncio.gather(*(caller(per_caller) for _ in range(CONCURRENCY)))
        cpu = time.process_time() - started
    await messages.put({"type": "lifespan.shutdown"})
    await lifespan
    return cpu / (per_caller * CONCURRENCY) * 1e6


def measure_once(
    kind: str,
    requests: int,
    upstream_port: int,
    extra_env: dict[str, str] | None = None,
    prepare: Prepare | None = None,
) -> float:
    """`measure` on a fresh database in a scratch folder, in an event loop of its own."""
    with tempfile.TemporaryDirectory() as scratch:
        database = Path(scratch) / "bench.db"
        return uvloop.run(measure(kind, requests, upstream_port, database, extra_env, prepare))


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    """`bench.upstream` in a child process, once it accepts connections."""
    upstream = subprocess.Popen(
        [sys.executable, "-m", "bench.upstream", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return upstream
        except OSError:
            if time.monotonic() > deadline:
                upstream.kill()
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def upstream_port() -> Iterator[int]:
    """The port of a `bench.upstream` started for the block and stopped after it."""
    port = free_port()
    upstream = start_upstream(port)
    try:
        yield port
    finally:
        upstream.terminate()
        upstream.wait()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in (*KINDS, "all"):
        print(__doc__, file=sys.stderr)
        return 2
    kinds = list(KINDS) if args[0] == "all" else [args[0]]
    requests = int(args[1]) if len(args) > 1 else 20_000
    with upstream_port() as port:
        for kind in kinds:
            us = measure_once(kind, requests, port)
            print(f"{kind}: {us:.1f} us of CPU per request ({requests} requests, {CONCURRENCY} concurrent)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
