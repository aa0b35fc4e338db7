"""OpenTelemetry traces, off unless the `OTEL_*` variables configure them (`otel_env`).

With tracing on, each request gets a SERVER span (continuing the client's W3C `traceparent`), and each
upstream attempt a CLIENT span under it, named and attributed as the GenAI semantic conventions say
(`chat gpt-4o`; operation, provider, request and response model, response id, finish reasons, usage
with cache and reasoning tokens, `error.type`), plus `gen_ai.usage.cost` (USD, as proposed upstream) and
Calcifer's facts (deployment, attempt number, cache hit, key id; never a secret, never a prompt or a
completion). The attempt's `traceparent` goes to the upstream unless the config file says not to for
that provider. With tracing off nothing here is built, and the gateway makes no span object at all.

The request path records each span as a `SpanRecord` (`spans`): the configured SDK sampler decides the
SERVER span (a CLIENT span follows its request's decision, as every sampler `OTEL_TRACES_SAMPLER` can
name would decide it; the built-in samplers' decisions for a root and for a client's sampled or
unsampled span are known in advance, so the request path asks the sampler only when a ratio applies),
and an ended span goes to the SDK's `BatchSpanProcessor`, whose worker thread batches them for the
exporter: the SDK's OTLP/HTTP exporter (its retries, compression, headers), writing the protobuf itself
(`otlp_encoding`) and posting it over one kept-alive connection (`otlp_http`). Building SDK spans cost
~45 us of CPU per request on the response path; a record costs a few.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection, Iterable, Mapping
from contextvars import ContextVar
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, StaticSampler, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from calcifer.domain.types import EMBEDDINGS, ChatRequest, StreamOutcome
from calcifer.observability.metrics import Facts, provider_system
from calcifer.observability.otel_env import OtelSettings
from calcifer.observability.otlp_encoding import DirectOtlpExporter
from calcifer.observability.otlp_http import KeptConnection
from calcifer.observability.spans import CLIENT, ERROR, SERVER, SpanRecord, new_id
from calcifer.runtime.tracecontext import UPSTREAM_TRACEPARENT

# A W3C `traceparent` as the SDK's propagator reads it (`TraceContextTextMapPropagator`).
_TRACEPARENT = re.compile(rb"[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:(-.*)|[ \t]*)")
_TRACEPARENT_MAX = 512
# Samplers whose decision never depends on the parent (the built-in roots `OTEL_TRACES_SAMPLER` names).
_PARENTLESS = (StaticSampler, TraceIdRatioBased)
# Request parameters recorded on the client span: body field -> (attribute, its one type: the encoder
# keeps encoded (key, value) pairs, in which 1 and 1.0 would be one).
_REQUEST_FIELDS = {
    "max_tokens": ("gen_ai.request.max_tokens", int),
    "max_completion_tokens": ("gen_ai.request.max_tokens", int),
    "temperature": ("gen_ai.request.temperature", float),
    "top_p": ("gen_ai.request.top_p", float),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", float),
    "presence_penalty": ("gen_ai.request.presence_penalty", float),
    "seed": ("gen_ai.request.seed", int),
}
_REQUEST_NAMES = frozenset(_REQUEST_FIELDS)
_CANCELLED = (asyncio.CancelledError, GeneratorExit)
# The request's SERVER span, for its attempts' CLIENT spans (set in the request's task).
_REQUEST_SPAN: ContextVar[SpanRecord | None] = ContextVar("calcifer_request_span", default=None)


class Tracing:
    """The request hooks (`start`/`end`, for the ASGI app) and the attempt hooks
    (`attempt`/`failed`/`answered`, the domain's `AttemptObserver`)."""

    def __init__(
        self,
        provider: TracerProvider,
        processor: BatchSpanProcessor,
        *,
        propagate: bool = True,
        no_propagate: Collection[str] = (),
    ) -> None:
        self.provider = provider  # its resource and sampler; shutting it down flushes the processor
        self._sampler: Sampler = provider.sampler
        self._fixed = _fixed_decisions(self._sampler)
        self._queue = processor.on_end
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
        cert = settings.client_certificate
        exporter = exporter or DirectOtlpExporter(
            resource,
            KeptConnection(settings.certificate, (cert, settings.client_key) if cert else None),
            endpoint=settings.endpoint,
            headers=dict(settings.headers),
            timeout=settings.timeout,
            compression=Compression(settings.compression),
        )
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=settings.max_queue_size,
            schedule_delay_millis=settings.schedule_delay_ms,
            max_export_batch_size=settings.max_export_batch_size,
            export_timeout_millis=settings.export_timeout_ms,
        )
        provider.add_span_processor(processor)
        return cls(provider, processor, propagate=propagate, no_propagate=no_propagate)

    async def aclose(self) -> None:
        """Export what is queued, then stop (in a thread: the export is blocking I/O)."""
        await asyncio.to_thread(self.provider.shutdown)

    def _export(self, span: SpanRecord) -> None:
        span.end = time.time_ns()
        self._queue(cast(ReadableSpan, span))  # the processor queues it; the exporter reads records

    # The request: a SERVER span.

    def start(self, headers: Iterable[tuple[bytes, bytes]], method: str) -> object:
        parent = None
        for name, value in headers:
            if name == b"traceparent":
                parent = _parent(value)
                break
        if parent is not None:
            trace_id, parent_id = parent[0], parent[1]
        else:
            trace_id, parent_id = new_id(128), 0
        attributes = self._decide(parent, trace_id, method, SpanKind.SERVER)
        span = SpanRecord(
            trace_id, new_id(64), parent_id, parent_id != 0, method, SERVER, time.time_ns(), attributes
        )
        return span, _REQUEST_SPAN.set(span)

    def _decide(
        self, parent: tuple[int, int, bool] | None, trace_id: int, name: str, kind: SpanKind
    ) -> dict[str, Any] | None:
        """A new span's attributes (the sampler's own first), or None when the sampler drops it. `parent`:
        the client's (trace id, span id, sampled). A decision known in advance costs no sampler call."""
        fixed = self._fixed[0 if parent is None else 1 if parent[2] else 2]
        if fixed is not None:
            return {} if fixed else None
        context = None
        if parent is not None:
            flags = TraceFlags(TraceFlags.SAMPLED if parent[2] else TraceFlags.DEFAULT)
            remote = SpanContext(parent[0], parent[1], is_remote=True, trace_flags=flags)
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        decision = self._sampler.should_sample(context, trace_id, name, kind)
        return dict(decision.attributes or ()) if decision.decision is Decision.RECORD_AND_SAMPLE else None

    def end(self, handle: object, facts: Facts) -> None:
        span, token = cast(tuple[SpanRecord, Any], handle)
        _REQUEST_SPAN.reset(token)
        attributes = span.attributes
        if attributes is None:
            return
        method = facts.method
        span.name = f"{method} {facts.route}"
        attributes["http.request.method"] = method
        attributes["http.route"] = facts.route
        attributes["http.response.status_code"] = facts.status
        attributes["calcifer.request_id"] = facts.request_id
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
        if facts.status >= 500:
            span.status = ERROR
        self._export(span)

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
        native = request.native
        operation = "embeddings" if native is not None and native.api == EMBEDDINGS else "chat"
        span_name = f"{operation} {model}"
        parent = _REQUEST_SPAN.get()
        if parent is None:  # an attempt outside a request (none today): a trace of its own
            trace_id = new_id(128)
            parent = SpanRecord(
                trace_id, 0, 0, False, "", CLIENT, 0, self._decide(None, trace_id, span_name, SpanKind.CLIENT)
            )
        attributes: dict[str, Any] | None = None
        if parent.attributes is not None:
            attributes = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": provider_system(provider),
                "gen_ai.request.model": model,
                "calcifer.provider": provider,
                "calcifer.deployment": deployment,
                "calcifer.attempt": number,
            }
            if request.stream:
                attributes["gen_ai.request.stream"] = True
            body = request.body
            for name in _REQUEST_NAMES.intersection(body):
                value = body[name]
                attribute, kind = _REQUEST_FIELDS[name]
                if isinstance(value, int | float) and not isinstance(value, bool) and kind(value) == value:
                    attributes[attribute] = kind(value)
        span = SpanRecord(
            parent.trace_id,
            new_id(64),
            parent.span_id,
            False,
            span_name,
            CLIENT,
            time.time_ns(),
            attributes,
        )
        outcome.observed = span
        sent = self._propagate and provider not in self._no_propagate
        UPSTREAM_TRACEPARENT.set(span.traceparent() if sent else None)

    def failed(self, outcome: StreamOutcome, error: BaseException) -> None:
        span = outcome.observed
        if not isinstance(span, SpanRecord):
            return
        outcome.observed = None
        if span.attributes is not None:
            self._failed(span, error)

    def answered(
        self, outcome: StreamOutcome, body: Mapping[str, object] | None, error: BaseException | None = None
    ) -> None:
        span = outcome.observed
        if not isinstance(span, SpanRecord):
            return
        outcome.observed = None
        if span.attributes is None:
            return
        _answer(span.attributes, outcome, body)
        if error is not None:
            self._failed(span, error)
        else:
            self._export(span)

    def _failed(self, span: SpanRecord, error: BaseException) -> None:
        kind = "cancelled" if isinstance(error, _CANCELLED) else type(error).__name__
        assert span.attributes is not None
        span.attributes["error.type"] = kind
        span.status = ERROR
        span.message = getattr(error, "message", None) or kind
        self._export(span)


def _parent(header: bytes) -> tuple[int, int, bool] | None:
    """The (trace id, span id, sampled) of a client's `traceparent`, None when the SDK's propagator would
    not accept it (malformed, an all-zero id, version `ff`, or version `00` with more fields)."""
    if len(header) > _TRACEPARENT_MAX:
        return None
    found = _TRACEPARENT.fullmatch(header)
    if found is None:
        return None
    version, trace_hex, span_hex, flags, more = found.groups()
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id or version == b"ff" or (version == b"00" and more):
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def _fixed_decisions(sampler: Sampler) -> tuple[bool | None, bool | None, bool | None]:
    """What `sampler` decides for a root span, a span under a client's sampled span and one under an
    unsampled span: True (always sampled), False (never) or None (it depends: ask the sampler)."""
    root = _root_decision(sampler)
    if isinstance(sampler, ParentBased):
        return (
            root,
            _parentless(sampler._remote_parent_sampled),
            _parentless(sampler._remote_parent_not_sampled),
        )
    if isinstance(sampler, _PARENTLESS):
        return root, root, root
    return root, None, None


def _parentless(sampler: Sampler) -> bool | None:
    return _root_decision(sampler) if isinstance(sampler, _PARENTLESS) else None


def _root_decision(sampler: Sampler) -> bool | None:
    """Whether `sampler` samples every root span (True) or none (False), or None when it decides by trace
    id. Each sampler `OTEL_TRACES_SAMPLER` names decides a root by its trace id alone, if at all (a ratio
    keeps the ids below a bound), and adds no attributes: asking it about the lowest and the highest id
    tells which, and spares the request path a call per span (~10 us)."""
    decisions = set()
    for trace_id in (1, (1 << 128) - 1):
        found = sampler.should_sample(None, trace_id, "probe", SpanKind.SERVER)
        if found.attributes:
            return None
        decisions.add(found.decision is Decision.RECORD_AND_SAMPLE)
    return decisions.pop() if len(decisions) == 1 else None


def _answer(attributes: dict[str, Any], outcome: StreamOutcome, body: Mapping[str, object] | None) -> None:
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
                attributes["gen_ai.response.finish_reasons"] = tuple(found)
    if outcome.finish_reason and "gen_ai.response.finish_reasons" not in attributes:
        attributes["gen_ai.response.finish_reasons"] = (outcome.finish_reason,)
    usage = outcome.usage
    if usage is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
        if attributes["gen_ai.operation.name"] != "embeddings":  # an embedding has no output tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            attributes["gen_ai.usage.cache_read.input_tokens"] = usage.cached_tokens
            attributes["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
            attributes["gen_ai.usage.reasoning.output_tokens"] = usage.reasoning_tokens
        if usage.estimated:
            attributes["calcifer.usage.estimated"] = True
    if outcome.cost is not None:
        attributes["gen_ai.usage.cost"] = float(outcome.cost)
