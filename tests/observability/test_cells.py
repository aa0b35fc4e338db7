"""The in-process cells report what prometheus_client's own metrics would for the same updates: the same
series, bucket boundaries (spelled the same), cumulative counts, counts and sums."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from calcifer.observability.cells import CellRecorder, le, observe
from calcifer.observability.families import DURATION_BUCKETS, TOKEN_BUCKETS, families
from tests.observability.scrape import Scrape


def _samples(scrape: Scrape, prefix: str) -> list[tuple[str, dict[str, str], float]]:
    return sorted(
        ((name, labels, value) for name, labels, value in scrape.samples if name.startswith(prefix)),
        key=lambda sample: (sample[0], sorted(sample[1].items())),
    )


def test_histogram_cells_scrape_as_prometheus_client_histograms() -> None:
    table = families(())
    cells = CellRecorder(table)
    ours = CollectorRegistry()
    ours.register(cells)
    theirs = CollectorRegistry()
    reference = Histogram(
        "gen_ai_client_token_usage",
        "reference",
        table["token_usage"].labels,
        buckets=TOKEN_BUCKETS,
        registry=theirs,
    )
    series = cells.series["token_usage"]
    rng = random.Random(7)
    amounts = [*TOKEN_BUCKETS, 0, 2**27, *(rng.randrange(0, 2**26) for _ in range(300))]
    for kind in ("input", "output"):
        labels = ("chat", "openai", "gpt-4o", "gpt-4o-2024-08-06", kind)
        target = series.cells(labels)
        for amount in amounts:
            if kind == "output" and amount % 3:
                continue
            reference.labels(*labels).observe(amount)
            observe(target, series.bounds, amount)
    ours_seen = _samples(Scrape(generate_latest(ours).decode()), "gen_ai_client_token_usage_")
    theirs_seen = [
        sample
        for sample in _samples(Scrape(generate_latest(theirs).decode()), "gen_ai_client_token_usage_")
        if not sample[0].endswith("_created")
    ]
    assert ours_seen == theirs_seen


def test_recorded_requests_match_prometheus_client_counters_and_histograms() -> None:
    cells = CellRecorder(families(()))
    ours = CollectorRegistry()
    ours.register(cells)
    theirs = CollectorRegistry()
    duration = Histogram("d", "d", ("route",), buckets=DURATION_BUCKETS, registry=theirs)
    requests = Counter("r", "r", ("route", "status"), registry=theirs)
    rng = random.Random(3)
    for n in range(500):
        seconds = rng.choice([*DURATION_BUCKETS, rng.uniform(0, 100)])
        route = "/a" if n % 2 else "/b"
        cells.route(route, "200", ()).record(seconds, None)
        duration.labels(route).observe(seconds)
        requests.labels(route, "200").inc()
    seen, reference = Scrape(generate_latest(ours).decode()), Scrape(generate_latest(theirs).decode())
    for route in ("/a", "/b"):
        assert seen.value("calcifer_requests_total", route=route) == reference.value("r_total", route=route)
        assert seen.value("calcifer_request_duration_seconds_count", route=route) == reference.value(
            "d_count", route=route
        )
        assert seen.value("calcifer_request_duration_seconds_sum", route=route) == pytest.approx(
            reference.value("d_sum", route=route)
        )
    assert seen.value("calcifer_gateway_overhead_seconds_count") == 0  # no model request was recorded


def test_usd_counters_add_decimals_exactly() -> None:
    cells = CellRecorder(families(()))
    for _ in range(10):
        cells.inc("cost_saved", ("gpt-4o",), Decimal("0.1"))
    assert cells.series["cost_saved"].cells(("gpt-4o",)) == [Decimal("1.0")]
    registry = CollectorRegistry()
    registry.register(cells)
    assert Scrape(generate_latest(registry).decode()).value("calcifer_cache_saved_usd_total") == 1.0


def test_the_in_flight_gauge() -> None:
    cells = CellRecorder(families(()))
    registry = CollectorRegistry()
    registry.register(cells)
    cells.tally.inc()
    cells.tally.inc()
    cells.tally.dec()
    assert Scrape(generate_latest(registry).decode()).value("calcifer_requests_in_flight") == 1


@pytest.mark.parametrize(
    ("bound", "spelled"),
    [(0.01, "0.01"), (1, "1.0"), (16384, "16384.0"), (1048576, "1.048576e+06"), (67108864, "6.7108864e+07")],
)
def test_bucket_bounds_are_spelled_as_prometheus_client_spells_them(bound: float, spelled: str) -> None:
    assert le(bound) == spelled
