"""A real gateway in front of two loopback OpenAI fakes, `primary` and `backup`, declared as deployments
of `gpt-4o` in a config file; and the ledger rows it wrote, read from its SQLite file once it stopped."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AsgiServer

# `cheapest` with equal prices keeps the declared order (heavier first): primary, then backup.
CONFIG = """\
providers:
  - name: primary{tag}
    base_url: {primary}
    models: [gpt-4o]
    claim: false
    timeout: 0.5
    max_retries: 0
  - name: backup{tag}
    base_url: {backup}
    models: [gpt-4o, gpt-4.1]
    claim: false
    timeout: 0.5
    max_retries: 0
routing:
  request_timeout: {request_timeout}
  cooldown: {{failures: 2, window: 60, seconds: 30}}
  models:
    gpt-4o:
      strategy: cheapest
      deployments:
        - {{provider: primary{tag}, weight: 2}}
        - {{provider: backup{tag}, weight: 1}}
      context_fallbacks: [big]
    big:
      deployments: [{{provider: backup{tag}, model: gpt-4.1}}]
"""


@dataclass
class Row:
    model: str
    provider: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    streamed: bool
    cut_short: bool
    estimated: bool
    cache_hit: bool
    cost_saved: Decimal | None


@dataclass
class Setup:
    primary: FakeOpenAI
    backup: FakeOpenAI
    gateway: AsgiServer
    database: Path
    env: dict[str, str]
    servers: list[AsgiServer]

    def replica(self) -> AsgiServer:
        """Another gateway with the same configuration (and its own ledger)."""
        database = self.database.with_name(f"replica{len(self.servers)}.db")
        server = AsgiServer(
            create_app(Settings.from_env({**self.env, "CALCIFER_DATABASE_URL": f"sqlite:///{database}"}))
        )
        self.servers.append(server)
        return server

    @property
    def url(self) -> str:
        return self.gateway.url + "/v1/chat/completions"

    def rows(self) -> list[Row]:
        """Stop the gateway (which drains the ledger) and read every row it wrote, in order."""
        self.gateway.close()
        with sqlite3.connect(self.database) as db:
            found = db.execute(
                "SELECT model, provider, status, prompt_tokens, completion_tokens, cost, streamed, cut_short,"
                " estimated, cache_hit, cost_saved FROM spend ORDER BY id"
            ).fetchall()
        return [
            Row(m, p, s, pt, ct, _money(c), bool(st), bool(cs), bool(e), bool(h), _money(saved))
            for m, p, s, pt, ct, c, st, cs, e, h, saved in found
        ]


def _money(pico: int | None) -> Decimal | None:
    return None if pico is None else Decimal(pico).scaleb(-12).normalize()


Start = Callable[..., Setup]


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[Start]:
    fakes: list[FakeOpenAI] = []
    servers: list[AsgiServer] = []

    def start(request_timeout: str = "10s", redis_url: str | None = None, tag: str = "") -> Setup:
        """`tag` is appended to the provider names (so that their keys in a shared Redis are unique)."""
        primary, backup = FakeOpenAI(), FakeOpenAI()
        fakes.extend((primary, backup))
        config = tmp_path / "calcifer.yaml"
        config.write_text(
            CONFIG.format(
                primary=primary.base_url, backup=backup.base_url, request_timeout=request_timeout, tag=tag
            )
        )
        database = tmp_path / "calcifer.db"
        env = {"CALCIFER_DATABASE_URL": f"sqlite:///{database}", "CALCIFER_CONFIG": str(config)}
        if redis_url is not None:
            env["CALCIFER_REDIS_URL"] = redis_url
        server = AsgiServer(create_app(Settings.from_env(env)))
        servers.append(server)
        return Setup(primary, backup, server, database, env, servers)

    yield start
    for server in servers:
        server.close()
    for fake in fakes:
        fake.close()
