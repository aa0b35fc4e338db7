"""The processes under test: the fake upstream and the gateway (Calcifer, or the bare proxy), each
started as a real process on 127.0.0.1 in its own session, and stopped by its own pid."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import payloads

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CHAT = "/v1/chat/completions"


@dataclass(slots=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/v1/chat/completions") -> str:
        return f"http://{HOST}:{self.port}{path}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def post_ok(port: int, path: str = CHAT, body: bytes = payloads.REQUEST) -> bool:
    """Whether a chat request answers 200 with a chat.completion."""
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status == 200 and b"chat.completion" in response.read()
    except OSError:
        return False
    finally:
        connection.close()


def start(name: str, argv: list[str], env: dict[str, str], port: int, logs: Path, ready_path: str) -> Server:
    log = logs / f"{name}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, port, process, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; its log:\n{_tail(log)}")
        if post_ok(port, ready_path):
            return server
        time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"{name} did not answer a chat request within 60 s; its log:\n{_tail(log)}")


def stop(server: Server, grace: float = 15.0) -> None:
    """SIGTERM to the server's own process group, then SIGKILL after `grace` seconds."""
    if server.process.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.process.wait()


def _tail(log: Path) -> str:
    return log.read_bytes()[-3000:].decode(errors="replace")


def start_upstream(logs: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--host", HOST, "--port", str(port)]
    return start("upstream", argv, dict(os.environ), port, logs, CHAT)


def gateway_argv(target: str, server: str, port: int, workers: int) -> list[str]:
    """How each target is started: Calcifer through its console script, the bare proxy under a server."""
    if target == "calcifer":
        script = Path(sys.executable).parent / "calcifer"
        return [str(script), "serve"] if script.exists() else [sys.executable, "-m", "calcifer", "serve"]
    app, common = "bench.bare_proxy:app", ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    if server == "granian":
        granian = shutil.which("granian") or str(Path(sys.executable).parent / "granian")
        return [granian, "--interface", "asgi", "--loop", "uvloop", "--http", "1", "--no-ws", *common,
                "--backlog", "4096", "--log-level", "warning", "--no-access-log", app]  # fmt: skip
    return [sys.executable, "-m", "uvicorn", app, *common, "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--backlog", "4096"]  # fmt: skip


def start_gateway(
    target: str, server: str, client: str, workers: int, upstream: Server, prefix: str, tmp: Path
) -> Server:
    """The gateway under test, pointed at `upstream` behind `prefix` ('' fast, '/paced', '/delay')."""
    port = free_port()
    base_url = f"http://{HOST}:{upstream.port}{prefix}/v1"
    env = {
        **os.environ,
        "SERVER_HOST": HOST,
        "SERVER_PORT": str(port),
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": "sk-bench",
        "CALCIFER_WORKERS": str(workers),
        # A fleet replica's ledger is PostgreSQL: CALCIFER_BENCH_DATABASE_URL (with CALCIFER_REDIS_URL).
        "CALCIFER_DATABASE_URL": os.environ.get("CALCIFER_BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.db",
        "BARE_UPSTREAM": base_url,
        "BARE_CLIENT": client,
    }
    name = f"gateway{prefix.replace('/', '-') or '-fast'}"
    return start(name, gateway_argv(target, server, port, workers), env, port, tmp, CHAT)
