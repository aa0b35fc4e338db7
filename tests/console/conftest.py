"""A gateway with virtual keys on, and a browser-like client signed in to its console."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from tests.conftest import StartGateway
from tests.fakes.threaded import AsgiServer

MASTER = "mk-console-0123456789abcdefghijkl"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def auth(key: str = MASTER) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def secured(start_gateway: StartGateway, gateway_env: dict[str, str]) -> AsgiServer:
    return start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})


def log_in(gateway: AsgiServer, key: str = MASTER) -> httpx.Client:
    client = httpx.Client(base_url=gateway.url, follow_redirects=False, timeout=10)
    answer = client.post("/ui/login", data={"key": key, "next": "/ui"})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def browser(secured: AsgiServer) -> Iterator[httpx.Client]:
    client = log_in(secured)
    yield client
    client.close()
