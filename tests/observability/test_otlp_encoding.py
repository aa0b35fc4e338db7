"""The direct OTLP encoder writes what the official protobuf classes read back as the SDK's own encoder
would have written it."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from calcifer.observability.otlp_encoding import encode


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_the_direct_encoding_decodes_as_the_sdks() -> None:
    kept = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "gw", "k": "v"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("calcifer", "1.0")
    attributes: dict[str, AttributeValue] = {
        "s": "text é",
        "b": True,
        "i": -3,
        "big": 2**40,
        "f": 0.25,
        "list": ["stop", "length"],
    }
    with tracer.start_as_current_span("POST /x", kind=SpanKind.SERVER) as server:
        child = tracer.start_span("chat m", kind=SpanKind.CLIENT, attributes=attributes)
        child.set_status(Status(StatusCode.ERROR, "upstream said no"))
        child.end()
        server.set_attribute("n", 200)
    ours = ExportTraceServiceRequest()
    ours.ParseFromString(encode(kept.spans))
    theirs = encode_spans(kept.spans)
    assert ours.resource_spans[0].resource == theirs.resource_spans[0].resource
    assert ours.resource_spans[0].scope_spans[0].scope == theirs.resource_spans[0].scope_spans[0].scope
    fields = ("trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano")
    for mine, sdk in zip(
        ours.resource_spans[0].scope_spans[0].spans,
        theirs.resource_spans[0].scope_spans[0].spans,
        strict=True,
    ):
        for name in (*fields, "end_time_unix_nano", "attributes", "flags"):
            assert getattr(mine, name) == getattr(sdk, name), name
        assert (mine.status.code, mine.status.message) == (sdk.status.code, sdk.status.message)
    assert encode([]) == b""
