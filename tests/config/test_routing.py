"""The config file's `routing:` and `cache:` sections, and `claim: false` providers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from calcifer.assembly.providers import assemble
from calcifer.config.file import parse_file_config
from calcifer.config.reader import ConfigFileError
from calcifer.config.settings import Settings
from calcifer.domain.cache import CacheRule
from calcifer.domain.cooldowns import CooldownPolicy
from calcifer.domain.deployments import DeploymentSpec, RouteSpec

GOOD = textwrap.dedent(
    """\
    providers:
      - name: vllm-a
        base_url: http://10.0.0.1:8000/v1
        models: [llama-3-70b]
        claim: false
      - name: vllm-b
        base_url: http://10.0.0.2:8000/v1
        models: [llama-3-70b]
        claim: false
        timeout: 5
    routing:
      request_timeout: 45s
      cooldown: {failures: 2, window: 30, seconds: 10, max_seconds: 2m}
      models:
        llama:
          strategy: least_in_flight
          deployments:
            - vllm-a
            - {provider: vllm-b, model: llama-3-70b, weight: 2.5, max_in_flight: 8, rpm: 600}
          fallbacks: [gpt-4o-mini]
          context_fallbacks: [gpt-4.1]
          cache: {ttl: 600}
        gpt-4o:
          cache: true
    cache:
      ttl: 120
      max_entries: 500
      backend: memory
    """
)


def test_the_routing_section_reads_every_key() -> None:
    cfg = parse_file_config(GOOD, "calcifer.yaml")
    assert cfg.unclaimed() == {"vllm-a", "vllm-b"}
    spec = cfg.routing
    assert spec is not None
    assert spec.request_timeout == 45
    assert spec.cooldown == CooldownPolicy(2, 30, 10, 120)
    assert spec.routes["llama"] == RouteSpec(
        (
            DeploymentSpec("vllm-a", "llama", line=18),
            DeploymentSpec("vllm-b", "llama-3-70b", 2.5, 8, 600, line=19),
        ),
        "least_in_flight",
        ("gpt-4o-mini",),
        ("gpt-4.1",),
        line=16,
    )
    assert spec.cache_rules == {"llama": CacheRule(True, 600), "gpt-4o": CacheRule(True, 120)}
    assert (spec.cache_ttl, spec.cache_max_entries, spec.cache_backend) == (120, 500, "memory")


def test_assembly_builds_the_routes_and_keeps_unclaimed_models_out_of_the_table(tmp_path: Path) -> None:
    path = tmp_path / "calcifer.yaml"
    path.write_text(GOOD.replace("- vllm-a\n", "- {provider: vllm-a, model: llama-3-70b}\n"))
    assembly = assemble(Settings.from_env({"CALCIFER_CONFIG": str(path)}), with_plugins=False)
    route = assembly.routing.routes["llama"]
    assert [d.key for d in route.group.deployments] == ["vllm-a/llama-3-70b", "vllm-b/llama-3-70b"]
    assert [g.name for g in route.fallbacks] == ["gpt-4o-mini"]
    assert route.fallbacks[0].deployments[0].provider.name == "openai"
    assert assembly.routing.request_timeout == 45
    registry = assembly.registry
    assert registry.resolve("llama")[0].name == "vllm-a"  # listed and resolvable under its own name
    with pytest.raises(Exception, match="llama-3-70b"):
        registry.resolve("llama-3-70b")  # unclaimed: reachable only through the route


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("routing:\n  models:\n    m:\n      strategy: fastest\n", 4, "strategy must be one of"),
        ("routing:\n  models:\n    m:\n      deployments: []\n", 4, "must list at least one"),
        ("routing:\n  models:\n    m:\n      deployments: [{weight: 1}]\n", 4, "needs 'provider'"),
        ("routing:\n  models:\n    m:\n      deployments: [{provider: p, weight: 0}]\n", 4, "more than 0"),
        ("routing:\n  models:\n    m:\n      deployments: [{provider: p, rpm: 1.5}]\n", 4, "whole number"),
        ("routing:\n  request_timeout: soon\n", 2, "must be a duration"),
        ("routing:\n  request_timeout: 0\n", 2, "more than 0"),
        ("routing:\n  models:\n    m:\n      retries: 3\n", 4, "unknown key 'retries'"),
        ("cache:\n  backend: memcached\n", 2, "'memory' or 'redis'"),
        ("routing:\n  cooldown: {failures: 0}\n", 2, "whole number >= 1"),
        ("providers:\n  - {name: a, base_url: 'http://x', models: [m], claim: maybe}\n", 2, "true or false"),
    ],
)
def test_bad_routing_names_the_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(ConfigFileError, match=problem) as caught:
        parse_file_config(text, "calcifer.yaml")
    assert caught.value.line == line


def test_a_route_to_an_unknown_provider_stops_start_up_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "calcifer.yaml"
    path.write_text("routing:\n  models:\n    m:\n      deployments:\n        - {provider: nobody}\n")
    with pytest.raises(ConfigFileError, match=r"line 5: no provider is named 'nobody'"):
        assemble(Settings.from_env({"CALCIFER_CONFIG": str(path)}), with_plugins=False)


def test_a_claimed_model_still_may_not_repeat() -> None:
    text = (
        "providers:\n  - {name: a, base_url: 'http://x', models: [m]}\n"
        "  - {name: b, base_url: 'http://y', models: [m]}\n"
    )
    with pytest.raises(ConfigFileError, match="already declared on line 2"):
        parse_file_config(text, "calcifer.yaml")


def test_the_readme_routing_example_assembles(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Routing, fallbacks and the cache") :]
    start = section.index("```yaml\n") + len("```yaml\n")
    path = tmp_path / "calcifer.yaml"
    path.write_text(section[start : section.index("```", start)])
    assembly = assemble(Settings.from_env({"CALCIFER_CONFIG": str(path)}), with_plugins=False)
    routes = assembly.routing.routes
    assert [d.key for d in routes["gpt-4o"].group.deployments] == [
        "openai/gpt-4o",
        "azure/azure-gpt-4o",
        "openai-2/gpt-4o",
    ]
    assert [g.name for g in routes["gpt-4o"].fallbacks] == ["claude-sonnet-4-5", "gemini-2.5-pro"]
    assert [d.key for d in routes["llama"].group.deployments] == ["vllm-a/llama-3-70b", "vllm-b/llama-3-70b"]
    assert assembly.routing.cache_rules == {"gpt-4o": CacheRule(True, 600)}
