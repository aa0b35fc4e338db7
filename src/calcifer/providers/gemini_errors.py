"""Google's error bodies as OpenAI's error fields: `{"error": {"code", "message", "status", "details"}}`.

A bad key is a 400 INVALID_ARGUMENT with an `API_KEY_INVALID` reason, reported here as the 401 it is;
a `RetryInfo` detail's `retryDelay` becomes the `Retry-After` the retry policy honours.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from calcifer.providers._http import ErrorFields

_STATUS_KIND = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "INTERNAL": "server_error",
    "UNAVAILABLE": "server_error",
    "DEADLINE_EXCEEDED": "timeout",
}


def _error_object(body: bytes) -> Mapping[str, object] | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:  # the non-SSE stream endpoint wraps errors in an array
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, Mapping) else None
    return error if isinstance(error, Mapping) else None


def _reasons(error: Mapping[str, object]) -> list[str]:
    details = error.get("details")
    return [
        str(d["reason"])
        for d in (details if isinstance(details, list) else [])
        if isinstance(d, Mapping) and isinstance(d.get("reason"), str)
    ]


def gemini_status(status: int, body: bytes) -> int:
    """The status to report: Gemini answers a bad key with 400 INVALID_ARGUMENT, which is really 401."""
    error = _error_object(body)
    if error is not None and "API_KEY_INVALID" in _reasons(error):
        return 401
    return status


def retry_delay(body: bytes) -> str | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "7s"`), as a `Retry-After` value."""
    error = _error_object(body)
    details = error.get("details") if error is not None else None
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return str(max(0.0, float(delay[:-1])))
            except ValueError:
                return None
    return None


def gemini_error_fields(body: bytes) -> ErrorFields | None:
    """Message, OpenAI error type, code and param of a Google error body."""
    error = _error_object(body)
    if error is None or not isinstance(error.get("message"), str):
        return None
    reasons = _reasons(error)
    status = str(error.get("status", ""))
    if "API_KEY_INVALID" in reasons:
        return str(error["message"]), "authentication_error", "invalid_api_key", None
    code = reasons[0].lower() if reasons else (status.lower() or None)
    return str(error["message"]), _STATUS_KIND.get(status), code, None
