"""The real Redis, with a key prefix of the test's own (shared with the limiter tests)."""

from tests.limits.conftest import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]
