"""The admin API for tag budgets: `/admin/tags` lists them, `/admin/tags/{tag}` reads one (GET), sets
it (PUT `{"max_budget", "budget_period"}`: 201 when new, 200 when replaced) or removes it (DELETE; the
tag's spend stays in every report). Each change is appended to the audit log as entity `tag`.

`set_tag_budget` and `delete_tag_budget` are the one flow both this API and `calcifer tags` run (on
the directory and the audit log, `None` when there is none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from calcifer.domain.checks import check_id
from calcifer.domain.errors import InvalidRequest
from calcifer.domain.levels import TagBudget
from calcifer.http.admin_changes import record
from calcifer.http.admin_levels import (
    NotFound,
    actor,
    audit_log,
    common_fields,
    directory_of,
    json_answer,
    live_spend,
)
from calcifer.http.asgi import Route
from calcifer.http.exchange import read_json
from calcifer.http.wire import money

_FIELDS = frozenset({"max_budget", "budget_period"})


def tag_view(budget: TagBudget) -> dict[str, object]:
    """A tag budget as JSON (money as an exact number), without its live spend."""
    return {
        "object": "tag_budget",
        "tag": budget.tag,
        "max_budget": money(budget.max_budget),
        "budget_period": budget.budget_period,
    }


async def set_tag_budget(
    directory: Any, log: Any, who: str, tag: str, body: Mapping[str, object]
) -> tuple[TagBudget, bool]:
    """Set `tag`'s budget from `body` (a period not given keeps the tag's, else `monthly`); audited.
    Returns the budget and whether it is new."""
    check_id(tag, "tag")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(unknown)}.", param=unknown[0])
    values: dict[str, Any] = common_fields(body)
    before = await directory.tag_budget(tag)
    values.setdefault("budget_period", before.budget_period if before else "monthly")
    budget = TagBudget(tag, values.get("max_budget"), values["budget_period"])  # type: ignore[arg-type]
    await directory.put_tag_budget(budget)
    action = "update" if before else "create"
    await record(log, who, action, "tag", tag, before and tag_view(before), tag_view(budget))
    return budget, before is None


async def delete_tag_budget(directory: Any, log: Any, who: str, tag: str) -> bool:
    """Remove `tag`'s budget (False when it had none); audited."""
    before = await directory.tag_budget(tag)
    if before is None or not await directory.delete_tag_budget(tag):
        return False
    await record(log, who, "delete", "tag", tag, tag_view(before), None)
    return True


async def _view(request: Request, budget: TagBudget) -> dict[str, object]:
    return tag_view(budget) | await live_spend(request, f"tag:{budget.tag}", budget.budget_period)


async def list_tags(request: Request) -> Response:
    budgets = await directory_of(request).tag_budgets()
    return json_answer({"object": "list", "data": [await _view(request, b) for b in budgets]})


async def get_tag(request: Request) -> Response:
    tag = request.path_params["tag"]
    budget = await directory_of(request).tag_budget(tag)
    if budget is None:
        raise NotFound(f"No budget for tag '{tag}'.")
    return json_answer(await _view(request, budget))


async def put_tag(request: Request) -> Response:
    body, _ = await read_json(request)
    budget, created = await set_tag_budget(
        directory_of(request), audit_log(request), actor(request), request.path_params["tag"], body
    )
    return json_answer(await _view(request, budget), 201 if created else 200)


async def delete_tag(request: Request) -> Response:
    tag = request.path_params["tag"]
    if not await delete_tag_budget(directory_of(request), audit_log(request), actor(request), tag):
        raise NotFound(f"No budget for tag '{tag}'.")
    return json_answer({"tag": tag, "object": "tag_budget", "deleted": True})


def tag_routes() -> list[Route]:
    return [
        Route("/admin/tags", list_tags, methods=["GET"]),
        Route("/admin/tags/{tag}", get_tag, methods=["GET"]),
        Route("/admin/tags/{tag}", put_tag, methods=["PUT"]),
        Route("/admin/tags/{tag}", delete_tag, methods=["DELETE"]),
    ]
