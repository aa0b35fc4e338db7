"""The tracer reads a client's `traceparent` and decides sampling without the SDK's objects on the
request path: it must accept and refuse exactly the headers the SDK's propagator does, and decide as
the configured SDK sampler would."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from calcifer.observability.otel_env import sampler
from calcifer.observability.tracing import _fixed_decisions, _parent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
HEADERS = [
    f"00-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-00",
    f"00-{TRACE}-{SPAN}-03",  # another flag beside `sampled`
    f" 00-{TRACE}-{SPAN}-01\t",
    f"01-{TRACE}-{SPAN}-01-later-fields",  # a later version may add fields
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 may not
    f"ff-{TRACE}-{SPAN}-01",
    f"00-{'0' * 32}-{SPAN}-01",
    f"00-{TRACE}-{'0' * 16}-01",
    f"00-{TRACE.upper()}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-1",
    f"00-{TRACE}-{SPAN}",
    "",
    "00-" + "1" * 600,
]


@pytest.mark.parametrize("header", HEADERS)
def test_a_traceparent_is_read_as_the_sdk_propagator_reads_it(header: str) -> None:
    context = TraceContextTextMapPropagator().extract({"traceparent": header})
    expected = trace.get_current_span(context).get_span_context()
    found = _parent(header.encode())
    if not expected.is_valid:
        assert found is None
    else:
        assert found == (expected.trace_id, expected.span_id, expected.trace_flags.sampled)


NAMES = [
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ratio", ["", "0", "0.25", "1"])
def test_a_decision_known_in_advance_is_the_samplers_own(name: str, ratio: str) -> None:
    chosen = sampler(name, ratio)
    fixed = _fixed_decisions(chosen)
    parents = [None, True, False]  # no parent, a sampled client span, an unsampled one
    for parent, decision in zip(parents, fixed, strict=True):
        context = None
        if parent is not None:
            flags = TraceFlags(TraceFlags.SAMPLED if parent else TraceFlags.DEFAULT)
            span = SpanContext(int(TRACE, 16), int(SPAN, 16), is_remote=True, trace_flags=flags)
            context = trace.set_span_in_context(NonRecordingSpan(span))
        sampled = {
            chosen.should_sample(context, trace_id, "x", SpanKind.SERVER).decision
            is Decision.RECORD_AND_SAMPLE
            for trace_id in (1, 1 << 63, 1 << 64, (1 << 128) - 1)
        }
        if decision is None:
            assert name.endswith("traceidratio") and ratio not in ("0", "1", "")
        else:
            assert sampled == {decision}
