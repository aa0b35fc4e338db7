"""`calcifer serve` as a newcomer runs it: README examples verbatim, env handling, SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest

from tests.e2e.process import CALCIFER, ROOT, GatewayProcess
from tests.fakes.openai_server import FakeOpenAI, Script


def readme_curls() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        for piece in re.split(r"\n(?=curl )", block):
            command = re.sub(r"\n\s*#.*", "", piece).strip()
            if command.startswith("curl ") and "localhost:8080" in command:
                commands.append(command)
    return commands


def run_curl(command: str, port: int) -> dict[str, object]:
    command = command.replace("localhost:8080", f"localhost:{port}")
    out = subprocess.run(
        ["bash", "-c", command + " -sS"], capture_output=True, text=True, timeout=30, check=True
    )
    parsed: dict[str, object] = orjson.loads(out.stdout)
    return parsed


def test_readme_examples_work_verbatim(fake_openai: FakeOpenAI) -> None:
    commands = readme_curls()
    assert len(commands) >= 2, "the README must show the original curl examples"
    echo = next(c for c in commands if '"echo4"' in c)
    gpt4 = next(c for c in commands if '"gpt-4"' in c)

    keyless = GatewayProcess({})
    try:
        answer = run_curl(echo, keyless.port)
        assert answer["content"] == "Test message"
        assert answer["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "cost": 0.0002}
        refused = run_curl(gpt4, keyless.port)
        assert "OPENAI_API_KEY" in str(refused["error"])
    finally:
        keyless.stop()

    keyed = GatewayProcess({"OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": fake_openai.base_url})
    try:
        answer = run_curl(gpt4, keyed.port)
        assert answer["content"] == "Hello! How can I help?"
        usage = answer["usage"]
        assert isinstance(usage, dict)
        # gpt-4 is priced from the catalogue ($30 / $60 per 1M): 12 in + 25 out.
        assert usage == {"prompt_tokens": 12, "completion_tokens": 25, "cost": 0.00186}
        assert answer["provider"] == "openai"
    finally:
        log = keyed.stop()
    assert "sk-e2e" not in log
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("path") == "/v1/completions"]
    assert access and access[-1]["cost"] == "0.00186" and access[-1]["model"] == "gpt-4"
    assert {
        "request_id",
        "model",
        "provider",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
    } <= set(access[-1])


def test_python_dash_m_serves_too() -> None:
    gateway = GatewayProcess({}, module=True)
    try:
        assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
    finally:
        gateway.stop()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SERVER_PORT", "eighty"),
        ("SERVER_READ_TIMEOUT", "soon"),
        ("OPENAI_MAX_RETRIES", "-1"),
        ("OPENAI_BASE_URL", "ftp://x"),
        ("SERVER_WRITE_TIMEOUT", "0s"),
    ],
)
def test_invalid_setting_stops_start_up_naming_it(name: str, value: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SERVER_"))}
    env[name] = value
    result = subprocess.run(
        [str(CALCIFER), "serve"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert name in result.stderr


def test_sigterm_finishes_in_flight_requests(fake_openai: FakeOpenAI) -> None:
    gateway = GatewayProcess({"OPENAI_API_KEY": "sk-e2e", "OPENAI_BASE_URL": fake_openai.base_url})
    fake_openai.script(*[Script(delay=1.0) for _ in range(4)])
    results: list[int] = []

    def call() -> None:
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "slow"}]}
        results.append(httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=10).status_code)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(fake_openai.requests) < 4:
        threading.Event().wait(0.02)
    gateway.proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(15)
    gateway.output()
    assert results == [200, 200, 200, 200]
    # uvicorn drains, then re-raises the signal it caught: the conventional exit of a SIGTERMed server.
    assert gateway.proc.returncode in (0, -signal.SIGTERM)


def test_help_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "calcifer", "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0 and "serve" in result.stdout
    assert Path(CALCIFER).exists()
