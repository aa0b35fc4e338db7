"""Option values the management commands (`calcifer keys|teams|users|customers`) parse alike."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import orjson


def usd(text: str | None) -> Decimal | None:
    """A budget in USD as an exact `Decimal` (None when the option was not given)."""
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"--max-budget must be a number of USD, got {text!r}") from None


def json_object(text: str | None) -> dict[str, object]:
    """`--metadata`: a JSON object (empty when not given)."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValueError("--metadata must be a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("--metadata must be a JSON object")
    return value


def names(text: str | None) -> tuple[str, ...]:
    """A comma-separated list of names (`--models`), blanks dropped."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())
