"""The direct OTLP encoder writes what the official protobuf classes read back as the SDK's own encoder
would have written the same spans."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import AttributeValue

from calcifer.observability.otlp_encoding import PAIRS_KEPT, SCOPE, Encoder
from calcifer.observability.spans import CLIENT, ERROR, SERVER, SpanRecord

RESOURCE = Resource.create({"service.name": "gw", "k": "v"})
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _record(
    span_id: int, parent: int, remote: bool, kind: int, attributes: dict[str, AttributeValue]
) -> SpanRecord:
    record = SpanRecord(
        TRACE, span_id, parent, remote, f"span {span_id}", kind, 1_000 + span_id, dict(attributes)
    )
    record.end = 5_000 + span_id
    return record


def _sdk(record: SpanRecord) -> ReadableSpan:
    """The SDK's span with the same content."""

    def context(span_id: int, remote: bool) -> SpanContext:
        return SpanContext(TRACE, span_id, remote, TraceFlags(TraceFlags.SAMPLED))

    status = Status(StatusCode.ERROR, record.message) if record.status == ERROR else Status(StatusCode.UNSET)
    return ReadableSpan(
        name=record.name,
        context=context(record.span_id, False),
        parent=context(record.parent_id, record.remote_parent) if record.parent_id else None,
        resource=RESOURCE,
        attributes=record.attributes,
        kind={SERVER: SpanKind.SERVER, CLIENT: SpanKind.CLIENT}[record.kind],
        status=status,
        start_time=record.start,
        end_time=record.end,
        instrumentation_scope=InstrumentationScope(SCOPE),
    )


def _decoded(data: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    request.ParseFromString(data)
    return request


def test_the_direct_encoding_decodes_as_the_sdks() -> None:
    attributes: dict[str, AttributeValue] = {
        "s": "text é",
        "b": True,
        "one": 1,
        "i": -3,
        "big": 2**40,
        "f": 0.25,
        "tuple": ("stop", "length"),
        "list": ["stop"],
        "calcifer.request_id": "r-1",
    }
    server = _record(0x11, 0x0F067AA0BA902B7, True, SERVER, attributes)
    client = _record(
        0x22, server.span_id, False, CLIENT, {**attributes, "s": "other", "calcifer.request_id": "r-2"}
    )
    client.status, client.message = ERROR, "upstream said no"
    root = _record(0x33, 0, False, SERVER, {"s": "text é"})
    records = [server, client, root]
    encoder = Encoder(RESOURCE)
    for _ in range(2):  # the second time from the kept pairs
        ours = _decoded(encoder.encode(records))
        theirs = encode_spans([_sdk(r) for r in records])
        assert ours.resource_spans[0].resource == theirs.resource_spans[0].resource
        assert ours.resource_spans[0].scope_spans[0].scope == theirs.resource_spans[0].scope_spans[0].scope
        assert ours.resource_spans[0].scope_spans[0].spans == theirs.resource_spans[0].scope_spans[0].spans
    assert encoder.encode([]) == b""


def test_values_past_the_kept_ones_are_still_encoded() -> None:
    encoder = Encoder(RESOURCE)
    count = PAIRS_KEPT + 10
    records = [_record(i + 1, 0, False, SERVER, {"n": i % count}) for i in range(2 * count)]
    decoded = _decoded(encoder.encode(records)).resource_spans[0].scope_spans[0].spans
    assert [span.attributes[0].value.int_value for span in decoded] == [i % count for i in range(2 * count)]
