"""The soak's fit: RSS against requests, reported in MB per 100k requests."""

from __future__ import annotations

import math

from bench.soak import slope_mb_per_100k


def test_a_steady_leak_is_its_slope_and_flat_memory_is_zero() -> None:
    leaking = [(float(i), i * 1000, 100_000_000 + i * 1000 * 20) for i in range(50)]  # 20 bytes a request
    assert math.isclose(slope_mb_per_100k(leaking), 2.0)
    flat = [(float(i), i * 1000, 100_000_000 + (i % 2) * 4096) for i in range(50)]
    assert abs(slope_mb_per_100k(flat)) < 0.01


def test_too_few_points_have_no_slope() -> None:
    assert math.isnan(slope_mb_per_100k([(0.0, 1, 5)]))
    assert math.isnan(slope_mb_per_100k([(0.0, 1, 5), (1.0, 1, 9)]))
