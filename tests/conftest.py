"""Shared fixtures: a fake OpenAI upstream and a real gateway server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AsgiServer

StartGateway = Callable[[dict[str, str]], AsgiServer]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def gateway_env(fake_openai: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    return {
        "CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/calcifer.db",
        "OPENAI_API_KEY": "sk-test-provider-key-123",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_MAX_RETRIES": "2",
        "OPENAI_TIMEOUT": "2s",
    }


@pytest.fixture
def start_gateway() -> Iterator[StartGateway]:
    servers: list[AsgiServer] = []

    def start(env: dict[str, str]) -> AsgiServer:
        server = AsgiServer(create_app(Settings.from_env(env)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def gateway(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway(gateway_env)
