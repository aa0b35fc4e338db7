"""OpenTelemetry traces, off unless the `OTEL_*` variables configure them (`otel_env`).

With tracing on, each request gets a SERVER span (continuing the client's W3C `traceparent`), and each
upstream attempt a CLIENT span under it, named and attributed as the GenAI semantic conventions say
(`chat gpt-4o`; operation, provider, request and response model, response id, finish reasons, usage
with cache and reasoning tokens, `error.type`), plus `gen_ai.usage.cost` (USD, as proposed upstream) and
Calcifer's facts (deployment, attempt number, cache hit, key id; never a secret, never a prompt or a
completion). The attempt's `traceparent` goes to the upstream unless the config file says not to for
that provider. Spans are exported over OTLP/HTTP by a BatchSpanProcessor: a worker thread, off the
response path. With tracing off nothing here is built, and the gateway makes no span object at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping
from contextvars import Token
from typing import Any, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from calcifer.domain.types import ChatRequest, StreamOutcome
from calcifer.observability.metrics import Facts, provider_system
from calcifer.observability.otel_env import OtelSettings
from calcifer.observability.otlp_encoding import DirectOtlpExporter
from calcifer.runtime.tracecontext import UPSTREAM_TRACEPARENT

_PROPAGATOR = TraceContextTextMapPropagator()
# Request parameters recorded on the client span: body field -> attribute.
_REQUEST_FIELDS = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("max_completion_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
)
_CANCELLED = (asyncio.CancelledError, GeneratorExit)


class Tracing:
    """The tracer, the request hooks (`start`/`end`, for the ASGI app) and the attempt hooks
    (`attempt`/`failed`/`answered`, the domain's `AttemptObserver`)."""

    def __init__(
        self,
        provider: TracerProvider,
        *,
        propagate: bool = True,
        no_propagate: Collection[str] = (),
    ) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("calcifer")
        self._propagate = propagate
        self._no_propagate = frozenset(no_propagate)

    @classmethod
    def exporting(
        cls,
        settings: OtelSettings,
        *,
        propagate: bool = True,
        no_propagate: Collection[str] = (),
        exporter: SpanExporter | None = None,
    ) -> Tracing:
        """Spans exported over OTLP/HTTP in batches, as `settings` say."""
        resource = Resource.create({**settings.resource, "service.name": settings.service_name})
        provider = TracerProvider(sampler=settings.sampler, resource=resource, shutdown_on_exit=False)
        exporter = exporter or DirectOtlpExporter(
            endpoint=settings.endpoint,
            headers=dict(settings.headers),
            timeout=settings.timeout,
            compression=Compression(settings.compression),
        )
        provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=settings.max_queue_size,
                schedule_delay_millis=settings.schedule_delay_ms,
                max_export_batch_size=settings.max_export_batch_size,
                export_timeout_millis=settings.export_timeout_ms,
            )
        )
        return cls(provider, propagate=propagate, no_propagate=no_propagate)

    async def aclose(self) -> None:
        """Export what is queued, then stop (in a thread: the export is blocking I/O)."""
        await asyncio.to_thread(self.provider.shutdown)

    # The request: a SERVER span.

    def start(self, headers: Iterable[tuple[bytes, bytes]], method: str) -> object:
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in (b"traceparent", b"tracestate")
        }
        parent = _PROPAGATOR.extract(carrier) if carrier else None
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    def end(self, handle: object, facts: Facts) -> None:
        span, token = cast(tuple[Span, Token[Context]], handle)
        otel_context.detach(token)
        method = facts.method
        if span.is_recording():
            span.update_name(f"{method} {facts.route}")
            attributes: dict[str, Any] = {
                "http.request.method": method,
                "http.route": facts.route,
                "http.response.status_code": facts.status,
                "calcifer.request_id": facts.request_id,
            }
            if facts.model is not None:
                attributes["gen_ai.request.model"] = facts.model
                attributes["calcifer.stream"] = facts.stream
                attributes["calcifer.cache_hit"] = facts.cache_hit
                if facts.provider:
                    attributes["calcifer.provider"] = facts.provider
                if facts.cost is not None:
                    attributes["gen_ai.usage.cost"] = float(facts.cost)
                if facts.outcome is not None:
                    attributes["calcifer.attempts"] = facts.outcome.attempts
            if facts.key_id is not None:
                attributes["calcifer.key_id"] = facts.key_id
            error = facts.error
            if error is not None:
                attributes["error.type"] = type(error).__name__
            elif facts.status >= 500:
                attributes["error.type"] = str(facts.status)
            span.set_attributes(attributes)
            if facts.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    # Each upstream attempt: a CLIENT span.

    def attempt(
        self,
        outcome: StreamOutcome,
        provider: str,
        model: str,
        deployment: str,
        number: int,
        request: ChatRequest,
    ) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_system(provider),
            "gen_ai.request.model": model,
            "calcifer.provider": provider,
            "calcifer.deployment": deployment,
            "calcifer.attempt": number,
        }
        if request.stream:
            attributes["gen_ai.request.stream"] = True
        body = request.body
        for name, attribute in _REQUEST_FIELDS:
            value = body.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[attribute] = value
        span = self._tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)
        outcome.observed = span
        sent = self._propagate and provider not in self._no_propagate
        UPSTREAM_TRACEPARENT.set(_traceparent(span) if sent else None)

    def failed(self, outcome: StreamOutcome, error: BaseException) -> None:
        span = outcome.observed
        if not isinstance(span, Span):
            return
        outcome.observed = None
        _failed(span, error)

    def answered(
        self, outcome: StreamOutcome, body: Mapping[str, object] | None, error: BaseException | None = None
    ) -> None:
        span = outcome.observed
        if not isinstance(span, Span):
            return
        outcome.observed = None
        if span.is_recording():
            span.set_attributes(_answer(outcome, body))
        if error is not None:
            _failed(span, error)
        else:
            span.end()


def _failed(span: Span, error: BaseException) -> None:
    kind = "cancelled" if isinstance(error, _CANCELLED) else type(error).__name__
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, getattr(error, "message", None) or kind))
    span.end()


def _answer(outcome: StreamOutcome, body: Mapping[str, object] | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if body is not None:
        if isinstance(body.get("id"), str):
            attributes["gen_ai.response.id"] = body["id"]
        if isinstance(body.get("model"), str):
            attributes["gen_ai.response.model"] = body["model"]
        choices = body.get("choices")
        if isinstance(choices, list):
            reasons = [c.get("finish_reason") for c in choices if isinstance(c, dict)]
            found = [r for r in reasons if isinstance(r, str)]
            if found:
                attributes["gen_ai.response.finish_reasons"] = found
    if outcome.finish_reason and "gen_ai.response.finish_reasons" not in attributes:
        attributes["gen_ai.response.finish_reasons"] = [outcome.finish_reason]
    usage = outcome.usage
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
        attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
        attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
        attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        if usage.estimated:
            attributes["calcifer.usage.estimated"] = True
    if outcome.cost is not None:
        attributes["gen_ai.usage.cost"] = float(outcome.cost)
    return attributes


def _traceparent(span: Span) -> bytes:
    found = span.get_span_context()
    return f"00-{found.trace_id:032x}-{found.span_id:016x}-{int(found.trace_flags):02x}".encode()
