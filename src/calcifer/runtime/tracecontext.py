"""The W3C `traceparent` of the upstream attempt being made, for the HTTP client to send with it.

Tracing (`observability/tracing.py`) sets it as each attempt starts, in the request's task, and clears
it for providers that must not get the header; with tracing off nothing sets it and nothing is sent."""

from __future__ import annotations

from contextvars import ContextVar

UPSTREAM_TRACEPARENT: ContextVar[bytes | None] = ContextVar("calcifer_upstream_traceparent", default=None)
