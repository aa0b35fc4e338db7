"""Start `calcifer serve` as a real process for end-to-end tests."""

from __future__ import annotations

import os
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
    def __init__(self, env: dict[str, str], *, module: bool = False, port: int | None = None) -> None:
        self.port = port or free_port()
        full_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CALCIFER_", "SERVER_"))
        }
        self.tmp = tempfile.mkdtemp(prefix="calcifer-e2e-")
        full_env.update(
            {"SERVER_PORT": str(self.port), "CALCIFER_DATABASE_URL": f"sqlite:///{self.tmp}/calcifer.db", **env}
        )
        command = [sys.executable, "-m", "calcifer", "serve"] if module else [str(CALCIFER), "serve"]
        self.proc = subprocess.Popen(
            command, env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 20
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

    def output(self) -> str:
        out, _ = self.proc.communicate(timeout=30)
        return out

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.output()
