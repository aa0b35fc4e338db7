"""Start `calcifer serve` as a real process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

from tests.fakes.threaded import free_port

ROOT = Path(__file__).resolve().parents[2]
CALCIFER = Path(sys.executable).parent / "calcifer"


class GatewayProcess:
    """`calcifer serve` on a loopback port, with a SQLite ledger in its own temporary directory unless
    `env` names another database. Its output goes to a file (a pipe nobody reads would fill up under
    load and stall the server); `output()` waits for the process to end and returns it."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        module: bool = False,
        port: int | None = None,
        ready_timeout: float = 120,
    ) -> None:
        self.port = port or free_port()
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CALCIFER_", "SERVER_"))
        }
        self.tmp = tempfile.mkdtemp(prefix="calcifer-e2e-")
        self.log_path = Path(self.tmp) / "output.log"
        full_env.update(
            {
                "SERVER_PORT": str(self.port),
                "CALCIFER_DATABASE_URL": f"sqlite:///{self.tmp}/calcifer.db",
                **env,
            }
        )
        command = [sys.executable, "-m", "calcifer", "serve"] if module else [str(CALCIFER), "serve"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early: {self.output()}")
            try:
                if httpx.get(self.url + "/ready", timeout=0.5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("gateway did not become ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def terminate(self) -> None:
        """Send SIGTERM (a graceful shutdown) if the process still runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int:
        """Wait for the process to exit and return its exit code; kill it after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise

    def output(self, timeout: float = 30) -> str:
        """Everything the process printed, once it has exited."""
        self.wait(timeout)
        return self.log_path.read_text(errors="replace")

    def stop(self) -> str:
        self.terminate()
        return self.output()
