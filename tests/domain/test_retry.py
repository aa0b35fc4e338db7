"""Retry policy: exponential backoff with jitter, capped, honouring a capped Retry-After."""

from __future__ import annotations

import pytest

from calcifer.domain.errors import (
    ProviderError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.retry import RetryPolicy

POLICY = RetryPolicy(max_retries=10, base_delay=0.5, max_delay=8.0, max_retry_after=20.0)


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.max_retries, policy.base_delay, policy.max_delay, policy.max_retry_after) == (
        3,
        0.5,
        8.0,
        20.0,
    )


@pytest.mark.parametrize(("retry", "full"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0)])
def test_backoff_doubles_per_retry(retry: int, full: float) -> None:
    error = UpstreamUnavailable("503")
    assert POLICY.delay(retry, error, 0.0) == pytest.approx(full / 2)
    assert POLICY.delay(retry, error, 0.5) == pytest.approx(full * 0.75)
    assert POLICY.delay(retry, error, 0.999999) == pytest.approx(full, rel=1e-5)


@pytest.mark.parametrize("retry", [5, 6, 9, 10])
def test_backoff_is_capped_at_max_delay(retry: int) -> None:
    delay = POLICY.delay(retry, UpstreamTimeout("t"), 0.999999)
    assert delay is not None
    assert delay <= 8.0
    assert delay == pytest.approx(8.0, rel=1e-5)


@pytest.mark.parametrize("rand", [0.0, 0.1, 0.5, 0.9, 0.999999])
@pytest.mark.parametrize("retry", [1, 2, 3, 7])
def test_jitter_stays_within_half_to_full_backoff(retry: int, rand: float) -> None:
    full = min(8.0, 0.5 * 2 ** (retry - 1))
    delay = POLICY.delay(retry, UpstreamUnavailable("x"), rand)
    assert delay is not None
    assert full / 2 <= delay < full


def test_jitter_is_monotonic_in_the_draw() -> None:
    error = UpstreamUnavailable("x")
    low, high = POLICY.delay(2, error, 0.1), POLICY.delay(2, error, 0.9)
    assert low is not None and high is not None
    assert low < high


@pytest.mark.parametrize("after", [0.0, 3.0, 12.5, 20.0])
def test_retry_after_is_honoured_exactly_up_to_the_cap(after: float) -> None:
    # honoured even above max_delay, and with no jitter
    error = UpstreamRateLimited("429", status=429, retry_after=after)
    assert POLICY.delay(1, error, 0.0) == after
    assert POLICY.delay(4, error, 0.9) == after


def test_retry_after_above_the_cap_means_no_retry() -> None:
    error = UpstreamRateLimited("429", status=429, retry_after=20.001)
    assert POLICY.delay(1, error, 0.0) is None


def test_negative_retry_after_means_retry_now() -> None:
    error = UpstreamUnavailable("503", retry_after=-5.0)
    assert POLICY.delay(1, error, 0.5) == 0.0


@pytest.mark.parametrize(
    "error",
    [UpstreamRejected("400", status=400), ProviderError("plain"), UpstreamRejected("x", retry_after=1)],
)
def test_non_retryable_errors_are_never_retried(error: ProviderError) -> None:
    assert POLICY.delay(1, error, 0.0) is None


def test_max_retries_exhausted() -> None:
    policy = RetryPolicy(max_retries=2)
    error = UpstreamUnavailable("503")
    assert policy.delay(2, error, 0.0) is not None
    assert policy.delay(3, error, 0.0) is None
    retry_after = UpstreamRateLimited("429", retry_after=1.0)
    assert policy.delay(3, retry_after, 0.0) is None


def test_zero_max_retries_never_retries() -> None:
    assert RetryPolicy(max_retries=0).delay(1, UpstreamUnavailable("x"), 0.0) is None
