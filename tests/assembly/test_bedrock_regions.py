"""Bedrock deployments of the config file, one per region: each signs for its own region (the fakes
refuse any other), and a route fails over from one region to the other."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import orjson
import pytest

from calcifer.app import create_app
from calcifer.config.file import parse_file_config
from calcifer.config.reader import ConfigFileError
from calcifer.config.settings import Settings
from tests.fakes.bedrock_server import BedrockFake, Reply
from tests.fakes.threaded import AiohttpServer, AsgiServer

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class Regions:
    def __init__(self, tmp: Path) -> None:
        self.eu = BedrockFake(region="eu-central-1", credentials={KEY: (SECRET, None)})
        self.us = BedrockFake(region="us-east-1", credentials={KEY: (SECRET, None)})
        self.servers = [AiohttpServer(self.eu.app()), AiohttpServer(self.us.app())]
        config = tmp / "calcifer.yaml"
        config.write_text(
            f"""
bedrock:
  - {{name: bedrock-eu, region: eu-central-1, base_url: "{self.servers[0].url}", claim: false,
     max_retries: 0, models: ["{CLAUDE}"]}}
  - {{name: bedrock-us, region: us-east-1, base_url: "{self.servers[1].url}", claim: false,
     max_retries: 0, models: ["{CLAUDE}"]}}
routing:
  models:
    claude-anywhere:
      deployments: [{{provider: bedrock-eu, model: "{CLAUDE}"}}]
      fallbacks: [claude-us]
    claude-us:
      deployments: [{{provider: bedrock-us, model: "{CLAUDE}"}}]
"""
        )
        env = {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "CALCIFER_CONFIG": str(config),
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }
        self.gateway = AsgiServer(create_app(Settings.from_env(env)))
        self.client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0)

    def close(self) -> None:
        self.gateway.close()
        for server in self.servers:
            server.close()


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regions]:
    r = Regions(tmp_path_factory.mktemp("regions"))
    yield r
    r.close()


def chat(regions: Regions, model: str) -> tuple[str, Decimal]:
    raw = regions.client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Hi"}]
    )
    cost = Decimal(str(orjson.loads(raw.http_response.content)["usage"]["cost"]))
    return raw.headers["x-calcifer-provider"], cost


def test_each_deployment_signs_for_its_own_region_and_is_priced_from_the_aws_list(regions: Regions) -> None:
    assert chat(regions, f"bedrock-eu/{CLAUDE}")[0] == "bedrock-eu"
    assert chat(regions, f"bedrock-us/{CLAUDE}")[0] == "bedrock-us"
    assert regions.eu.refused == regions.us.refused == []
    provider, cost = chat(regions, "claude-anywhere")
    assert provider == "bedrock-eu" and cost == (125 * Decimal(3) + 60 * Decimal(15)) / 10**6


def test_a_failing_region_falls_back_to_the_other(regions: Regions) -> None:
    regions.eu.script.append(Reply(status=503, body={"message": "Service unavailable"}))
    provider, _ = chat(regions, "claude-anywhere")
    assert provider == "bedrock-us" and regions.us.received[-1].model == CLAUDE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("bedrock: [{name: b, region: mars-1, models: [m]}]", "not an AWS region"),
        ("bedrock: [{name: b, models: [m]}]", "needs 'region'"),
        ("bedrock: {name: b, region: us-east-1, models: [m], colour: red}", "colour"),
    ],
)
def test_a_bad_bedrock_section_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigFileError, match=problem):
        parse_file_config(text)


def test_a_deployment_with_an_unknown_profile_has_no_credentials() -> None:
    from calcifer.providers.aws_signing import chain_credentials

    assert chain_credentials({"AWS_CONFIG_FILE": "/nonexistent"}, profile="no-such-profile") is None
