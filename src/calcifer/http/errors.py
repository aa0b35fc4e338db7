"""The one table from domain error to HTTP status and OpenAI-shaped error body."""

from __future__ import annotations

import math

import orjson
from starlette.responses import Response

from calcifer.domain.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderNotConfigured,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.limits import BudgetExceeded, LimiterUnavailable, RateLimited
from calcifer.domain.spending import ModelNotAllowed, UnpricedUnderBudget


class PayloadTooLarge(GatewayError):
    kind = "invalid_request_error"
    code = "request_too_large"


class RequestTimeout(GatewayError):
    kind = "invalid_request_error"
    code = "request_timeout"


class UnsupportedEncoding(GatewayError):
    kind = "invalid_request_error"
    code = "unsupported_content_encoding"
    http_status = 415


class RouteNotFound(GatewayError):
    kind = "invalid_request_error"
    code = "unknown_url"


class MethodNotAllowed(GatewayError):
    kind = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow  # the route's methods, for the `Allow` header a 405 must carry


class HeadersTooLarge(GatewayError):
    kind = "invalid_request_error"
    code = "request_headers_too_large"
    http_status = 431


class InternalError(GatewayError):
    """Something the gateway did not expect went wrong: the answer names no internals."""

    code = "internal_error"

    def __init__(self) -> None:
        super().__init__("The gateway failed to handle this request.")


# Most specific class first; the first match wins.
_STATUS: tuple[tuple[type[GatewayError], int], ...] = (
    (InvalidRequest, 400),
    (ModelNotFound, 404),
    (RouteNotFound, 404),
    (MethodNotAllowed, 405),
    (RequestTimeout, 408),
    (PayloadTooLarge, 413),
    (ModelNotAllowed, 403),
    (UnpricedUnderBudget, 403),
    (BudgetExceeded, 429),
    (RateLimited, 429),
    (LimiterUnavailable, 503),
    (ProviderNotConfigured, 503),
    (UpstreamRateLimited, 429),
    (UpstreamTimeout, 504),
    (UpstreamUnavailable, 502),
)


def status_of(error: GatewayError) -> int:
    """The HTTP status for a domain error. Upstream rejections keep the upstream's own status."""
    if isinstance(error, UpstreamRejected):
        return error.status
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    extra = getattr(error, "http_status", None)
    if isinstance(extra, int):
        return extra
    if isinstance(error, ProviderError):
        return 502
    return 500


def error_payload(error: GatewayError) -> dict[str, object]:
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


def error_headers(error: GatewayError) -> dict[str, str]:
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, RateLimited):
        retry_after = error.decision.retry_after
    if isinstance(retry_after, int | float) and retry_after > 0:
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allow)
    if isinstance(error, ProviderNotConfigured):
        # Retrying cannot help until the operator sets the credential: tell the SDKs not to.
        headers["x-should-retry"] = "false"
    headers.update(getattr(error, "calcifer_headers", None) or {})  # who was tried (set by Exchange)
    return headers


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    all_headers = error_headers(error)
    if headers:
        all_headers.update(headers)
    return Response(
        orjson.dumps(error_payload(error)),
        status_code=status_of(error),
        media_type="application/json",
        headers=all_headers,
    )
