"""`SqlRequestLog` on SQLite and a real PostgreSQL: pages, cursors, filters, one request."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from calcifer.domain.requests import RequestFilter, RequestLog
from calcifer.storage.database import Database
from calcifer.storage.requests import SqlRequestLog
from tests.storage.test_sql_ledger import T0, row, started


async def _filled(db: Database) -> SqlRequestLog:
    ledger = await started(db)
    for n in range(12):
        ledger.record(
            row(
                n,
                model="gpt-4o" if n % 2 else "echo4",
                status=200 if n % 3 else 429,
                streamed=n % 4 == 0,
                cache_hit=n == 5,
                cost=None if n == 7 else Decimal("0.000125"),
                cost_saved=Decimal("0.5") if n == 5 else None,
                key_id="key_b" if n >= 10 else "key_a",
                customer="acme" if n == 5 else None,
                tags=("web", "beta") if n == 5 else (),
                outcome="refused_budget" if n == 9 else "answered",
                attempts=2 if n == 5 else 0 if n == 9 else None,
                deployments="openai/gpt-4o,azure/gpt-4o" if n == 5 else "",
                ttfb_ms=37 if n == 5 else None,
            )
        )
    await ledger.aclose()
    return SqlRequestLog(db)


async def test_pages_come_newest_first_and_the_cursor_continues_exactly(db: Database) -> None:
    log = await _filled(db)
    assert isinstance(log, RequestLog)
    seen: list[str] = []
    before = None
    while True:
        page = await log.page(RequestFilter(), before, 5)
        seen += [r.record.request_id for r in page.rows]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == [f"req-{n}" for n in range(11, -1, -1)]
    last = await log.page(RequestFilter(), None, 12)
    assert len(last.rows) == 12 and last.next_before is None


async def test_a_row_reads_back_as_it_was_written(db: Database) -> None:
    log = await _filled(db)
    hit = await log.find("req-5")
    assert hit is not None
    assert hit.record == row(
        5,
        model="gpt-4o",
        cache_hit=True,
        cost_saved=Decimal("0.5"),
        customer="acme",
        tags=("web", "beta"),
        attempts=2,
        deployments="openai/gpt-4o,azure/gpt-4o",
        ttfb_ms=37,
    )
    unpriced = await log.find("req-7")
    assert unpriced is not None and unpriced.record.cost is None
    assert (unpriced.record.attempts, unpriced.record.deployments, unpriced.record.ttfb_ms) == (
        None,
        "",
        None,
    )
    refused = await log.find("req-9")
    assert refused is not None and refused.record.attempts == 0
    assert await log.find("req-nope") is None


async def test_filters_narrow_the_rows(db: Database) -> None:
    log = await _filled(db)

    async def ids(**fields: object) -> list[int]:
        page = await log.page(RequestFilter(**fields), None, 50)  # type: ignore[arg-type]
        return sorted(int(r.record.request_id.split("-")[1]) for r in page.rows)

    assert await ids(model="echo4") == [0, 2, 4, 6, 8, 10]
    assert await ids(status=429) == [0, 3, 6, 9]
    assert await ids(status_class=4) == [0, 3, 6, 9]
    assert await ids(status_class=2, model="gpt-4o") == [1, 5, 7, 11]
    assert await ids(streamed=True) == [0, 4, 8]
    assert await ids(cache_hit=True) == [5]
    assert await ids(key_id="key_b") == [10, 11]
    assert await ids(since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6)) == [3, 4, 5]
    assert await ids(user="nobody") == []
    assert await ids(customer="acme") == [5]
    assert await ids(outcome="refused_budget") == [9]
    assert await ids(team="red", provider="openai", cut_short=False) == list(range(12))
