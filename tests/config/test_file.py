"""The YAML config file: what it declares, what it builds, and errors that name the file, line and problem."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from calcifer.assembly.file_providers import build_file_providers
from calcifer.config.file import FileConfig, load_file_config, parse_file_config
from calcifer.config.reader import ConfigFileError
from calcifer.domain.ports import Credentialed, Provider
from calcifer.domain.pricing import PricingConfig
from calcifer.domain.types import ChatRequest, Usage
from calcifer.providers.azure import AzureOpenAIProvider
from calcifer.providers.openai import OpenAIProvider
from tests.fakes.azure_server import AzureFake

GOOD = textwrap.dedent(
    """\
    providers:
      - name: groq
        base_url: https://api.groq.com/openai/v1
        api_key_env: GROQ_API_KEY
        timeout: 30
        max_retries: 2
        headers: {X-Title: calcifer}
        models:
          - llama-3.1-8b-instant
          - {name: llama-3.3-70b-versatile, input: 0.59, output: 0.79}
      - name: ollama
        base_url: http://127.0.0.1:11434/v1
        models:
          llama3.2:
          qwen3: {input: 0, output: 0}
    azure:
      endpoint: https://my-resource.openai.azure.com
      api_version: 2024-10-21
      deployments:
        gpt-4o: prod-gpt4o
        gpt-4o-mini: {deployment: mini, input: 0.15, output: 0.60, cached_input: 0.075}
    aliases:
      fast: llama-3.1-8b-instant
      local: llama3.2
    prices:
      gpt-4o: {input: 2.50, output: 10, cached_input: 1.25, cache_write: 3.125, reasoning: 10}
      llama-3.3-70b-versatile: {input: 0.5, output: 0.7}
    """
)


def test_a_good_file_declares_providers_azure_aliases_and_prices() -> None:
    cfg = parse_file_config(GOOD, "calcifer.yaml")
    groq, ollama = cfg.providers
    assert (groq.name, groq.base_url, groq.api_key_env) == (
        "groq",
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
    )
    assert (groq.timeout, groq.max_retries, groq.headers) == (30.0, 2, (("X-Title", "calcifer"),))
    assert [m.name for m in groq.models] == ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"]
    assert groq.models[0].price is None and groq.models[1].line == 10
    assert ollama.api_key_env is None and [m.name for m in ollama.models] == ["llama3.2", "qwen3"]
    (azure,) = cfg.azure
    assert (azure.name, azure.api_key_env, azure.api_version) == (
        "azure",
        "AZURE_OPENAI_API_KEY",
        "2024-10-21",
    )
    assert [(m.name, m.deployment) for m in azure.models] == [
        ("gpt-4o", "prod-gpt4o"),
        ("gpt-4o-mini", "mini"),
    ]
    assert [(a.alias, a.target, a.line) for a in cfg.aliases] == [
        ("fast", "llama-3.1-8b-instant", 23),
        ("local", "llama3.2", 24),
    ]
    assert cfg.max_retries() == {"groq": 2}


def test_prices_are_exact_decimals_and_overrides_win() -> None:
    prices = parse_file_config(GOOD).prices()
    # Per-1M list prices become exact per-1K rates; 0.59 never passes through a binary float.
    assert prices["llama-3.3-70b-versatile"] == PricingConfig.per_million("0.5", "0.7")  # the override
    assert prices["gpt-4o-mini"].cached_input_cost_per_1k == Decimal("0.000075")
    assert prices["gpt-4o"] == PricingConfig.per_million(
        "2.50", "10", cached_input="1.25", cache_write="3.125", reasoning="10"
    )
    assert prices["qwen3"].input_cost_per_1k == 0
    assert "llama-3.1-8b-instant" not in prices and "llama3.2" not in prices
    line_price = parse_file_config(GOOD.replace("input: 0.5, output: 0.7", "input: 0.1, output: 0.2"))
    assert line_price.prices()["llama-3.3-70b-versatile"].input_cost_per_1k == Decimal("0.0001")


def test_empty_file_declares_nothing() -> None:
    assert parse_file_config("", "empty.yaml") == FileConfig("empty.yaml")
    assert parse_file_config("# nothing yet\n").prices() == {}


def test_providers_are_built_with_keys_from_the_named_env_vars() -> None:
    cfg = parse_file_config(GOOD)
    built = build_file_providers(cfg, {"GROQ_API_KEY": "gsk-secret", "AZURE_OPENAI_API_KEY": "az-secret"})
    assert [p.name for p in built] == ["groq", "ollama", "azure"]
    groq, ollama, azure = built
    assert all(isinstance(p, Provider) and isinstance(p, Credentialed) for p in built)
    assert isinstance(groq, OpenAIProvider) and isinstance(ollama, OpenAIProvider)
    assert isinstance(azure, AzureOpenAIProvider)
    assert groq.configured and groq.credential_setting == "GROQ_API_KEY"
    assert ollama.configured  # keyless local server
    assert azure.models == frozenset({"gpt-4o", "gpt-4o-mini"})
    unkeyed = build_file_providers(cfg, {})
    assert [p.configured for p in unkeyed if isinstance(p, OpenAIProvider)] == [False, True, False]


def test_aliases_are_checked_against_routable_models() -> None:
    cfg = parse_file_config(GOOD, "calcifer.yaml")
    routable = {"llama-3.1-8b-instant", "llama3.2", "gpt-4o"}
    assert cfg.aliases_for(routable) == {"fast": "llama-3.1-8b-instant", "local": "llama3.2"}
    with pytest.raises(ConfigFileError) as missing:
        cfg.aliases_for({"llama-3.1-8b-instant"})
    assert str(missing.value) == (
        "calcifer.yaml, line 24: alias 'local' points to 'llama3.2', which no provider serves"
    )
    with pytest.raises(ConfigFileError, match="line 23: alias 'fast' is already a model name"):
        cfg.aliases_for({*routable, "fast"})


BAD = [
    ("providers: [\n  {name: x\n", 3, "invalid YAML"),
    ("provider:\n  - name: x\n", 1, "unknown key 'provider'"),
    ("prices:\n  gpt-4o: {input: 1, output: 2}\n  gpt-4o: {input: 1, output: 3}\n", 3, "'gpt-4o' twice"),
    ("providers:\n  - name: x\n    models: [m]\n", 2, "providers[0] needs 'base_url'"),
    (
        "providers:\n  - name: x\n    base_url: ftp://x\n    models: [m]\n",
        3,
        "must be an http:// or https:// URL",
    ),
    ("providers:\n  - name: x\n    base_url: http://x\n    models: []\n", 4, "at least one model"),
    ("providers:\n  - name: x y\n    base_url: http://x\n    models: [m]\n", 2, "may use only letters"),
    (
        "providers:\n  - {name: a, base_url: 'http://a', models: [m]}\n"
        "  - {name: b, base_url: 'http://b', models: [m]}\n",
        3,
        "model 'm' is already declared on line 2",
    ),
    (
        "providers:\n  - {name: a, base_url: 'http://a', models: [m]}\n"
        "  - {name: a, base_url: 'http://b', models: [n]}\n",
        3,
        "provider name 'a' is already used on line 2",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {input: -1, output: 2}\n",
        5,
        "input must be a number >= 0",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {input: cheap, output: 2}\n",
        5,
        "must be a number",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {input: .nan, output: 2}\n",
        5,
        "must be a number",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {input: true, output: 2}\n",
        5,
        "must be a number",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {input: 1}\n",
        5,
        "without 'output'",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models:\n      m: {inptu: 1, output: 1}\n",
        5,
        "unknown key 'inptu'",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    timeout: 0\n    models: [m]\n",
        4,
        "more than 0 seconds",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    max_retries: 1.5\n    models: [m]\n",
        4,
        "whole number",
    ),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models: [m]\naliases: {m: m}\n",
        5,
        "alias 'm' is also a model",
    ),
    ("aliases:\n  a: b\n  b: c\n", 2, "alias 'a' points to another alias"),
    (
        "azure:\n  endpoint: https://r.openai.azure.com\n  deployments:\n    gpt-4o: {input: 1, output: 2}\n",
        4,
        "needs 'deployment'",
    ),
    (
        "azure:\n  - {endpoint: 'https://a', deployments: {m: d}}\n"
        "  - {endpoint: 'https://b', deployments: {n: e}}\n",
        3,
        "after the first needs its own 'name'",
    ),
    ("azure:\n  endpoint: https://r\n  deployments: {}\n", 3, "at least one model"),
    ("aliases: [a, b]\n", 1, "aliases must be a mapping"),
    (
        "providers:\n  - name: x\n    base_url: http://x\n    models: [~]\n",
        4,
        "providers[0].models[0] must be a non-empty string",
    ),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_bad_files_name_the_file_the_line_and_the_problem(text: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigFileError) as caught:
        parse_file_config(text, "/etc/calcifer.yaml")
    message = str(caught.value)
    assert message.startswith(f"/etc/calcifer.yaml, line {line}: "), message
    assert problem in message
    assert caught.value.line == line and caught.value.path == "/etc/calcifer.yaml"


def test_a_key_pasted_in_place_of_the_env_var_name_is_never_echoed() -> None:
    text = "providers:\n  - name: x\n    base_url: http://x\n    api_key_env: sk-live-abcdef123456\n"
    text += "    models: [m]\n"
    with pytest.raises(ConfigFileError) as caught:
        parse_file_config(text, "c.yaml")
    assert str(caught.value).startswith("c.yaml, line 4: providers[0].api_key_env must name an environment")
    assert "sk-live" not in str(caught.value)


def test_load_reads_the_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "calcifer.yaml"
    path.write_text(GOOD)
    assert load_file_config(path) == parse_file_config(GOOD, str(path))
    path.write_text("aliases:\n  fast: [x]\n")
    with pytest.raises(ConfigFileError, match=rf"^{path}, line 2: aliases.fast must be a non-empty string$"):
        load_file_config(path)
    with pytest.raises(ConfigFileError, match=r"missing\.yaml: cannot read the config file"):
        load_file_config(tmp_path / "missing.yaml")


@pytest.fixture
async def compatible_server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback OpenAI-compatible server that records the Authorization header it gets."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(
            {"auth": request.headers.get("Authorization"), "title": request.headers.get("X-Title"), **body}
        )
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        message = {"role": "assistant", "content": "hi", "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        return web.json_response(
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [choice],
                "usage": usage,
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", seen
    await runner.cleanup()


async def test_built_providers_talk_to_their_servers(
    compatible_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = compatible_server
    async with AzureFake({"prod-gpt4o"}) as azure_fake:
        text = textwrap.dedent(
            f"""\
            providers:
              - {{name: remote, base_url: '{url}', api_key_env: REMOTE_KEY, models: [m1],
                  headers: {{X-Title: calcifer}}}}
              - {{name: local, base_url: '{url}', models: [m2]}}
            azure:
              endpoint: {azure_fake.endpoint}
              api_key_env: MY_AZURE_KEY
              deployments: {{gpt-4o: prod-gpt4o}}
            """
        )
        env = {"REMOTE_KEY": "remote-secret", "MY_AZURE_KEY": azure_fake.api_key}
        providers = build_file_providers(parse_file_config(text), env)
        for provider in providers:
            await provider.start()  # type: ignore[attr-defined]
        try:
            answers = [
                await p.complete(
                    ChatRequest(model=m, body={"model": m, "messages": [{"role": "user", "content": "x"}]})
                )
                for p, m in zip(providers, ["m1", "m2", "gpt-4o"], strict=True)
            ]
        finally:
            for provider in providers:
                await provider.aclose()  # type: ignore[attr-defined]
    assert [(s["auth"], s["title"], s["model"]) for s in seen] == [
        ("Bearer remote-secret", "calcifer", "m1"),
        (None, None, "m2"),
    ]
    assert azure_fake.received[-1].deployment == "prod-gpt4o"
    assert [a.usage for a in answers[:2]] == [Usage(3, 2), Usage(3, 2)]
    assert answers[2].usage == Usage(prompt_tokens=1200, completion_tokens=7, cached_tokens=1024)


def test_the_documented_example_file_is_valid() -> None:
    path = Path(__file__).parents[2] / "examples" / "calcifer.yaml"
    cfg = load_file_config(path)
    assert [p.name for p in cfg.providers] == ["groq", "openrouter", "ollama"]
    assert [a.name for a in cfg.azure] == ["azure"]
    assert cfg.prices()["llama-3.3-70b-versatile"] == PricingConfig.per_million("0.59", "0.79")
    routable = {m.name for p in cfg.providers for m in p.models} | {
        m.name for a in cfg.azure for m in a.models
    }
    assert cfg.aliases_for(routable) == {"fast": "llama-3.1-8b-instant", "local": "llama3.2"}
