"""When and how long to wait before retrying a failed upstream call."""

from __future__ import annotations

from dataclasses import dataclass

from calcifer.domain.errors import ProviderError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring the upstream's `Retry-After` up to a cap.

    A `Retry-After` longer than `max_retry_after` is not waited for: the error goes back to the client
    at once (with its `Retry-After`) instead of holding the connection open.
    """

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 20.0

    def delay(self, retry: int, error: ProviderError, rand: float) -> float | None:
        """Seconds to wait before retry number `retry` (1-based), or None when not to retry.

        `rand` is a uniform draw from [0, 1) for the jitter.
        """
        if not error.retryable or retry > self.max_retries:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            return max(0.0, error.retry_after)
        backoff = min(self.max_delay, self.base_delay * float(2 ** (retry - 1)))
        return backoff * (0.5 + rand / 2)
