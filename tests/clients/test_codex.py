"""The real Codex CLI (`@openai/codex` 0.171.0, pinned in `tests/clients/codex/`) through a real
`calcifer serve`, for an OpenAI, a Claude and a Gemini model: the model asks for a shell command, Codex
runs it in its sandbox in a temporary directory, sends its output back, and prints the final answer.
Asserted: what reached each upstream, what Codex printed, and the priced ledger rows."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.clients.agents import (
    CLAUDE,
    FINAL,
    GEMINI,
    GPT,
    Upstreams,
    ledger_rows,
    running_gateway,
    running_upstreams,
    skip_or_fail,
)
from tests.e2e.process import GatewayProcess

CODEX = Path(__file__).parent / "codex" / "node_modules" / ".bin" / "codex"
NOTE = "calcifer-fire"


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    if not CODEX.exists():
        skip_or_fail(f"the Codex CLI is not installed at {CODEX} (`make clients` installs it with npm)")
    with running_upstreams() as running:
        yield running


@pytest.fixture
def gateway(upstreams: Upstreams) -> Iterator[GatewayProcess]:
    with running_gateway(upstreams) as running:
        yield running


def run_codex(gateway: GatewayProcess, model: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    home, work = tmp / "codex-home", tmp / "work"
    home.mkdir()
    work.mkdir()
    (work / "note.txt").write_text(NOTE + "\n")
    (home / "config.toml").write_text(
        f'model = "{model}"\n'
        'model_provider = "calcifer"\n'
        "[model_providers.calcifer]\n"
        'name = "calcifer"\n'
        f'base_url = "{gateway.url}/v1"\n'
        'env_key = "CALCIFER_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
    env.update(CODEX_HOME=str(home), HOME=str(tmp), CALCIFER_KEY="sk-calcifer-client")
    command = [str(CODEX), "exec", "--skip-git-repo-check", "--sandbox", "read-only", "-C", str(work)]
    return subprocess.run(
        [*command, "Read note.txt and tell me what it says."],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def tool_output(request: dict[str, Any], model: str) -> str:
    """The output of the shell command as the second request carried it to the upstream."""
    if model == GPT:
        outputs = [item for item in request["input"] if item.get("type") == "function_call_output"]
        return str(outputs[-1]["output"])
    if model == CLAUDE:
        results = [
            b
            for m in request["messages"]
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        return orjson.dumps(results[-1]["content"]).decode()
    responses = [
        p["functionResponse"] for c in request["contents"] for p in c["parts"] if "functionResponse" in p
    ]
    return orjson.dumps(responses[-1]).decode()


@pytest.mark.parametrize("model", [GPT, CLAUDE, GEMINI])
def test_codex_runs_a_tool_call_round_trip(
    model: str, upstreams: Upstreams, gateway: GatewayProcess, tmp_path: Path
) -> None:
    upstreams.script_tool_call(model, "exec_command", {"cmd": "cat note.txt"})
    done = run_codex(gateway, model, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(FINAL)
    first, second = upstreams.requests(model)[-2:]
    assert NOTE in tool_output(second, model)
    if model == GPT:  # Codex's request reached OpenAI as it sent it
        assert first["store"] is False and first["stream"] is True
        assert first["include"] == ["reasoning.encrypted_content"] and "client_metadata" in first
        assert {"type": "web_search", "external_web_access": False} in first["tools"]
        assert all(item.get("id", "").startswith("msg_") for item in first["input"])
        assert upstreams.openai.headers[-1]["Authorization"] == "Bearer sk-test-provider-key-123"
    elif model == CLAUDE:  # translated: only the function tools were sent
        names = [tool["name"] for tool in first["tools"]]
        assert "exec_command" in names and "web_search" not in names
    rows = [row for row in ledger_rows(gateway) if row["model"] == model]
    assert len(rows) == 2 and all(row["status"] == 200 and row["streamed"] for row in rows)
    assert all(row["cost"] is not None and row["cost"] > 0 for row in rows)
