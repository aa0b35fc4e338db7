"""The per-request log: the ledger's rows read one by one, newest first, a page at a time.

Pages are keyset-paginated on the row's ledger id (`before`: the cursor the previous page gave), so the
thousandth page costs what the first does. Filters narrow by who, what and how it went; every value
arrives as text from a query string and is checked here, naming the parameter it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.ledger import OUTCOMES, Outcome, SpendRecord, parse_time

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_TEXT_FILTERS = ("key_id", "team", "user", "customer", "model", "provider")
_FLAG_FILTERS = ("streamed", "cut_short", "cache_hit")
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
PARAMS = frozenset({*_TEXT_FILTERS, *_FLAG_FILTERS, "status", "outcome", "since", "until", "limit", "before"})


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """Which rows to show; None leaves a field unfiltered. `status` is one code (429) or a class
    (`status_class` 4 for 4xx)."""

    key_id: str | None = None
    team: str | None = None
    user: str | None = None
    customer: str | None = None
    model: str | None = None
    provider: str | None = None
    status: int | None = None
    status_class: int | None = None
    streamed: bool | None = None
    cut_short: bool | None = None
    cache_hit: bool | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One ledger row and its id in the ledger (the pagination cursor)."""

    id: int
    record: SpendRecord


@dataclass(frozen=True, slots=True)
class RequestPage:
    rows: tuple[LoggedRequest, ...]
    next_before: int | None  # the cursor of the next (older) page, None on the last page


@runtime_checkable
class RequestLog(Protocol):
    """Reads the ledger's rows one by one."""

    async def page(self, filters: RequestFilter, before: int | None, limit: int) -> RequestPage:
        """Up to `limit` rows matching `filters` with an id below `before` (all when None), newest first."""
        ...

    async def find(self, request_id: str) -> LoggedRequest | None:
        """The newest row of the request `request_id`."""
        ...


@dataclass(frozen=True, slots=True)
class RequestQuery:
    filters: RequestFilter
    before: int | None
    limit: int


def parse_request_query(params: Mapping[str, str]) -> RequestQuery:
    """A page request from query parameters; `InvalidRequest` naming the first bad parameter."""
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise InvalidRequest(f"Unknown query parameter '{unknown[0]}'.", param=unknown[0])
    values: dict[str, object] = {name: params[name] for name in _TEXT_FILTERS if params.get(name)}
    for name in _FLAG_FILTERS:
        if name in params:
            flag = _FLAGS.get(params[name].lower())
            if flag is None:
                raise InvalidRequest(f"'{name}' must be true or false.", param=name)
            values[name] = flag
    status = params.get("status", "")
    if status:
        if len(status) == 3 and status[0] in "12345" and status[1:].lower() == "xx":
            values["status_class"] = int(status[0])
        elif status.isdigit() and 100 <= int(status) <= 599:
            values["status"] = int(status)
        else:
            raise InvalidRequest(
                "'status' must be a status code such as 429, or a class: 2xx to 5xx.", param="status"
            )
    outcome = params.get("outcome", "")
    if outcome:
        found = next((o for o in OUTCOMES if o == outcome), None)
        if found is None:
            raise InvalidRequest(f"'outcome' must be one of {', '.join(OUTCOMES)}.", param="outcome")
        values["outcome"] = found
    for name in ("since", "until"):
        if params.get(name):
            values[name] = parse_time(params[name], param=name)
    filters = RequestFilter(**values)  # type: ignore[arg-type]
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        raise InvalidRequest("'until' must be later than 'since'.", param="until")
    limit = _whole(params.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"'limit' must be between 1 and {MAX_LIMIT}.", param="limit")
    before = _whole(params.get("before"), "before", 0) or None
    return RequestQuery(filters, before, limit)


def _whole(text: str | None, param: str, default: int) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit() or len(text) > 18:
        raise InvalidRequest(f"'{param}' must be a whole number.", param=param)
    return int(text)
