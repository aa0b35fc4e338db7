"""The `calcifer` sub-commands as a user runs them: prices, keys and spend."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from tests.e2e.process import CALCIFER, GatewayProcess


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CALCIFER_", "SERVER_"))}
    full.update(env or {})
    return subprocess.run(
        [str(CALCIFER), *args], env=full, capture_output=True, text=True, timeout=60, check=False
    )


def test_prices_shows_a_model_and_checks_the_catalogue() -> None:
    shown = run("prices", "gpt-4o-mini")
    assert shown.returncode == 0
    assert "0.15" in shown.stdout and "0.6" in shown.stdout and "genai-prices" in shown.stdout
    assert run("prices", "--check").returncode == 0
    assert run("prices", "no-such-model").returncode != 0


def test_keys_and_spend_work_on_the_gateway_database(tmp_path: Path) -> None:
    env = {"CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"}
    created = run("keys", "create", "--name", "cli-team", "--max-budget", "1.5", "--models", "echo4", env=env)
    assert created.returncode == 0, created.stderr
    secret = next(line.split(": ", 1)[1] for line in created.stdout.splitlines() if line.startswith("key: "))
    listed = run("keys", "list", env=env)
    assert "cli-team" in listed.stdout and "$1.5 total" in listed.stdout and secret not in listed.stdout
    assert run("keys", "create", "--name", "x", "--max-budget", "lots", env=env).returncode == 2

    master = "mk-cli-test-0123456789abcdefghij"
    gateway = GatewayProcess({**env, "CALCIFER_MASTER_KEY": master})
    try:
        body = {"model": "echo4", "messages": [{"role": "user", "content": "Test message"}]}
        answer = httpx.post(
            gateway.url + "/v1/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 200 and answer.json()["usage"]["cost"] == 0.0002
    finally:
        gateway.stop()
    deadline = time.monotonic() + 10
    spend = run("spend", "--by", "model", "--since", "7d", env=env)
    while "echo4" not in spend.stdout and time.monotonic() < deadline:
        spend = run("spend", "--by", "model", "--since", "7d", env=env)
    assert spend.returncode == 0 and "echo4" in spend.stdout and "0.0002" in spend.stdout
    assert run("spend", "--by", "planet", env=env).returncode == 2
