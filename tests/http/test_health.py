"""`/health/live` and `/health/ready` on a real gateway: open without a key, and readiness follows the
database and Redis (reached through a TCP relay the test cuts), while `/health` and `/ready` stay as
they were."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx2 as httpx
import pytest
from tests.conftest import StartGateway
from tests.e2e.load import drop_schema, require_postgres, require_redis
from tests.fakes.tcp_proxy import TcpProxy

MASTER = "mk-health-0123456789abcdefghijkl"


def test_probes_answer_without_a_key_and_say_what_they_checked(
    start_gateway: StartGateway, gateway_env: dict[str, str]
) -> None:
    gateway = start_gateway({**gateway_env, "CALCIFER_MASTER_KEY": MASTER})
    assert httpx.get(gateway.url + "/v1/models").status_code == 401  # keys are on
    live = httpx.get(gateway.url + "/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = httpx.get(gateway.url + "/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "started": True,
        "draining": False,
        "checks": {"database": "ok", "redis": "not configured"},
    }
    assert httpx.post(gateway.url + "/health/ready").status_code == 405


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@pytest.fixture
async def relayed() -> AsyncIterator[tuple[dict[str, str], TcpProxy, TcpProxy]]:
    """A gateway environment whose PostgreSQL and Redis are reached through relays the test can cut."""
    postgres, redis_url = await require_postgres(), require_redis()
    target = urlsplit(postgres)
    database = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    target = urlsplit(redis_url)
    redis = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    schema = f"calcifer_health_{uuid.uuid4().hex[:16]}"
    env = {
        "CALCIFER_DATABASE_URL": _through(database, postgres),
        "CALCIFER_DATABASE_SCHEMA": schema,
        "CALCIFER_REDIS_URL": _through(redis, redis_url),
    }
    yield env, database, redis
    database.close()
    redis.close()
    await drop_schema(schema)


def _until(probe: Callable[[], httpx.Response], wanted: int, timeout: float = 10) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer.status_code == wanted or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_readiness_fails_while_the_database_or_redis_is_unreachable_and_liveness_does_not(
    start_gateway: StartGateway, relayed: tuple[dict[str, str], TcpProxy, TcpProxy]
) -> None:
    env, database, redis = relayed
    gateway = start_gateway(env)

    def probe() -> httpx.Response:
        return httpx.get(gateway.url + "/health/ready", timeout=10)

    assert probe().json()["checks"] == {"database": "ok", "redis": "ok"}

    redis.cut()
    answer = _until(probe, 503)
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "not ready",
        "started": True,
        "draining": False,
        "checks": {"database": "ok", "redis": "unreachable"},
    }
    assert httpx.get(gateway.url + "/health/live").status_code == 200
    assert httpx.get(gateway.url + "/ready").status_code == 200  # unchanged: started and not draining
    redis.restore()
    assert _until(probe, 200).status_code == 200

    database.cut()
    answer = _until(probe, 503)
    assert answer.json()["checks"] == {"database": "unreachable", "redis": "ok"}
    assert "127.0.0.1" not in answer.text  # which host failed is logged, never told to the caller
    database.restore()
    assert _until(probe, 200).json()["status"] == "ready"
