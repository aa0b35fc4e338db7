"""The cooldown policy: which failures cool a deployment, and for how long."""

from __future__ import annotations

from calcifer.domain.cooldowns import CooldownPolicy
from calcifer.domain.deployments import DeploymentStats
from calcifer.domain.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable

POLICY = CooldownPolicy(failures=2, window=10, seconds=30, max_seconds=120)


def test_retry_after_cools_at_once_up_to_the_cap() -> None:
    stats = DeploymentStats()
    assert POLICY.after_failure(stats, UpstreamRateLimited("x", retry_after=7), 0) == 7
    assert POLICY.after_failure(stats, UpstreamRateLimited("x", retry_after=900), 0) == 120


def test_repeated_failures_within_the_window_cool_then_count_afresh() -> None:
    stats = DeploymentStats()
    down = UpstreamUnavailable("x")
    assert POLICY.after_failure(stats, down, 100) is None
    assert POLICY.after_failure(stats, down, 105) == 30
    assert POLICY.after_failure(stats, down, 106) is None  # counting starts again after a cooldown
    assert POLICY.after_failure(stats, down, 117) is None  # 11 s after the first: a new window
    assert POLICY.after_failure(stats, down, 118) == 30


def test_rejections_never_cool_and_success_resets() -> None:
    stats = DeploymentStats()
    assert POLICY.after_failure(stats, UpstreamRejected("bad", status=400), 0) is None
    assert POLICY.after_failure(stats, UpstreamUnavailable("x"), 0) is None
    POLICY.after_success(stats)
    assert POLICY.after_failure(stats, UpstreamUnavailable("x"), 1) is None
