"""Query parameters of the per-request log, parsed and checked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.requests import DEFAULT_LIMIT, RequestFilter, parse_request_query


def test_no_parameters_is_the_first_page_of_everything() -> None:
    query = parse_request_query({})
    assert query.filters == RequestFilter() and query.before is None and query.limit == DEFAULT_LIMIT


def test_every_filter_is_read() -> None:
    query = parse_request_query(
        {
            "key_id": "key_a",
            "team": "red",
            "user": "alice",
            "customer": "acme",
            "outcome": "refused_budget",
            "model": "gpt-4o",
            "provider": "openai",
            "status": "429",
            "streamed": "true",
            "cut_short": "0",
            "cache_hit": "No",
            "since": "2026-03-01",
            "until": "2026-03-02T00:00:00Z",
            "limit": "10",
            "before": "1234",
        }
    )
    assert query.filters == RequestFilter(
        key_id="key_a",
        team="red",
        user="alice",
        customer="acme",
        outcome="refused_budget",
        model="gpt-4o",
        provider="openai",
        status=429,
        streamed=True,
        cut_short=False,
        cache_hit=False,
        since=datetime(2026, 3, 1, tzinfo=UTC),
        until=datetime(2026, 3, 2, tzinfo=UTC),
    )
    assert (query.limit, query.before) == (10, 1234)
    assert parse_request_query({"status": "5xx"}).filters.status_class == 5
    assert parse_request_query({"status": "4XX", "model": ""}).filters == RequestFilter(status_class=4)
    assert parse_request_query({"before": "0"}).before is None


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"colour": "red"}, "colour"),
        ({"streamed": "maybe"}, "streamed"),
        ({"outcome": "lost"}, "outcome"),
        ({"status": "6xx"}, "status"),
        ({"status": "99"}, "status"),
        ({"status": "abc"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"before": "1" * 19}, "before"),
    ],
)
def test_bad_parameters_are_refused_naming_them(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_request_query(params)
    assert raised.value.param == param
