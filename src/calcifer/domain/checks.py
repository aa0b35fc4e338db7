"""The checks of what an admin sets on a key, team, user, member or customer, in one place: each
raises `InvalidRequest` naming the field, so the admin API and the CLI refuse the same input the
same way."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from calcifer.domain.errors import InvalidRequest
from calcifer.domain.limits import BUDGET_PERIODS, MAX_BUDGET

ID_MAX = 256  # the longest id or name


def check_id(value: object, param: str = "id") -> None:
    if not isinstance(value, str) or not value or len(value) > ID_MAX or value != value.strip():
        raise InvalidRequest(f"'{param}' must be a non-empty id of at most {ID_MAX} characters.", param=param)


def check_name(value: object, param: str = "name") -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX:
        raise InvalidRequest(
            f"'{param}' must be a non-empty string of at most {ID_MAX} characters.", param=param
        )


def check_budget(budget: object, period: object) -> None:
    """A budget is a finite, non-negative Decimal of at most `MAX_BUDGET` USD (or None), over a period."""
    if budget is not None and (
        not isinstance(budget, Decimal) or not budget.is_finite() or budget < 0 or budget > MAX_BUDGET
    ):
        raise InvalidRequest(
            f"'max_budget' must be a non-negative number of USD of at most {MAX_BUDGET}, or null.",
            param="max_budget",
        )
    if period not in BUDGET_PERIODS:
        raise InvalidRequest(
            f"'budget_period' must be one of {', '.join(BUDGET_PERIODS)}.", param="budget_period"
        )


def check_models(models: object) -> None:
    if not isinstance(models, tuple) or not all(isinstance(m, str) and m for m in models):
        raise InvalidRequest("'models' must be a list of model names.", param="models")


def check_rate_limits(rpm_limit: object, tpm_limit: object) -> None:
    for param, limit in (("rpm_limit", rpm_limit), ("tpm_limit", tpm_limit)):
        if limit is not None and (type(limit) is not int or limit <= 0):
            raise InvalidRequest(f"'{param}' must be a positive integer, or null.", param=param)


def check_metadata(metadata: object) -> None:
    if not isinstance(metadata, Mapping) or not all(isinstance(k, str) for k in metadata):
        raise InvalidRequest("'metadata' must be a JSON object.", param="metadata")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError):
        raise InvalidRequest("'metadata' must be a JSON object.", param="metadata") from None
