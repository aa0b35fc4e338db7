"""Two gateways sharing the test Redis: a cooldown one replica starts is honoured by the other, and an
answer one replica cached is a hit on the other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx2 as httpx
import pytest
import redis

from tests.fakes.openai_server import Script, error_body
from tests.limits.conftest import redis_url
from tests.routing.conftest import Start

__all__ = ["redis_url"]


@pytest.fixture
def tag(redis_url: str) -> Iterator[str]:
    """A suffix for this test's provider names and request, so its Redis keys are its own; deleted after."""
    suffix = "-" + uuid.uuid4().hex[:12]
    yield suffix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = [*client.scan_iter(match=f"calcifer:cooldown:*{suffix}/*")]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_replicas_share_cooldowns_and_the_cache(routed: Start, redis_url: str, tag: str) -> None:
    setup = routed(redis_url=redis_url, tag=tag)
    other = setup.replica()
    setup.primary.script(
        Script(status=429, body=error_body("Rate limit", "rate_limit_error"), headers={"Retry-After": "20"})
    )
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"hello {tag}"}]}
    one = httpx.post(setup.url, json=body, headers={"x-calcifer-cache": "on"}, timeout=10)
    assert (one.headers["x-calcifer-provider"], one.headers["x-calcifer-attempts"]) == (f"backup{tag}", "2")
    # The other replica never saw primary fail, yet skips it: the cooldown is in Redis.
    fresh = {**body, "messages": [{"role": "user", "content": f"another {tag}"}]}
    two = httpx.post(other.url + "/v1/chat/completions", json=fresh, timeout=10)
    assert (two.headers["x-calcifer-provider"], two.headers["x-calcifer-attempts"]) == (f"backup{tag}", "1")
    # And the answer the first replica cached is served by the other one.
    hit = httpx.post(
        other.url + "/v1/chat/completions", json=body, headers={"x-calcifer-cache": "on"}, timeout=10
    )
    assert hit.headers["x-calcifer-cache"] == "hit" and hit.json()["choices"] == one.json()["choices"]
    assert len(setup.primary.requests) == 1 and len(setup.backup.requests) == 2
