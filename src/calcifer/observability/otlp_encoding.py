"""OTLP trace export bytes (`ExportTraceServiceRequest`, protobuf wire format) written directly from the
gateway's `SpanRecord`s, in the exporter's thread.

The SDK's own encoder builds a protobuf object per span, attribute and value before serialising them:
about 100 us of CPU per span with a gateway span's twenty attributes (measured). Writing the wire format
directly costs a small fraction of that, and most attributes repeat from span to span (method, route,
provider, model, deployment, small counts): each (key, value) pair is encoded once and kept. That needs
each key's values to be of one type (`1`, `1.0` and `True` are one dict key): the tracer records a
number-valued key always as an int or always as a float, and lists as tuples. The tests decode what this
writes with the official `opentelemetry-proto` classes and compare it with the SDK encoder's output for
the same spans.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.http.transport._base import BaseHTTPTransport
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from calcifer.observability.spans import SpanRecord

SCOPE = "calcifer"  # the instrumentation scope every span is exported under
PAIRS_KEPT = 4096  # attributes (and span names) kept encoded; when full, the attributes start afresh
_UNIQUE = frozenset({"calcifer.request_id", "gen_ai.response.id"})  # never worth keeping
_DOUBLE = struct.Struct("<d")
_TIMES = struct.Struct("<BQBQ")  # start_time_unix_nano (field 7) and end_time_unix_nano (8), fixed64
_FLAGS = {False: b"\x85\x01" + struct.pack("<I", 0x100), True: b"\x85\x01" + struct.pack("<I", 0x300)}
_KINDS = {kind: b"\x30" + bytes((kind,)) for kind in range(6)}
_SHORT = 1 << 14  # lengths below this are looked up in `_LENGTHS`, not computed


def _compute(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # a negative int64, as protobuf writes it: ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint(value: int) -> bytes:
    return _LENGTHS[value] if 0 <= value < _SHORT else _compute(value)


_LENGTHS = [_compute(n) for n in range(_SHORT)]


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text_attribute(key: bytes, text: str) -> bytes:
    """A string attribute (field 9 of a span) whose key is encoded already (field 1 of a `KeyValue`)."""
    value = text.encode()
    if len(value) > 1000:
        return _field(9, key + _field(2, _field(1, value)))
    any_value = b"\x0a" + _LENGTHS[len(value)] + value
    pair = key + b"\x12" + _LENGTHS[len(any_value)] + any_value
    return b"\x4a" + _LENGTHS[len(pair)] + pair


def _any(value: object) -> bytes:
    if isinstance(value, str):
        return _field(1, value.encode())
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(7, value)
    if isinstance(value, Sequence):
        return _field(5, b"".join(_field(1, _any(item)) for item in value))
    return _field(1, str(value).encode())


def _pair(key: str, value: object) -> bytes:
    """A `KeyValue` as a span's or a resource's attribute (field 9 of a span, 1 of a resource)."""
    return _field(1, key.encode()) + _field(2, _any(value))


class _Kept(dict[tuple[str, object], bytes]):
    """Attributes encoded (field 9 of a span), by (key, value): a missing one is encoded on lookup, and
    kept unless its value is unique to its span (`_UNIQUE`); when full, the attributes start afresh."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[str, bytes] = {}  # the unique attributes' keys, encoded

    def __missing__(self, pair: tuple[str, object]) -> bytes:
        key, value = pair
        if key in _UNIQUE and isinstance(value, str):
            encoded = self._keys.get(key)
            if encoded is None:
                encoded = self._keys[key] = _field(1, key.encode())
            return _text_attribute(encoded, value)
        found = _field(9, _pair(key, value))
        if len(self) >= PAIRS_KEPT:
            self.clear()
        self[pair] = found
        return found


class Encoder:
    """Writes export requests for one resource (encoded once) and the gateway's scope."""

    def __init__(self, resource: Resource) -> None:
        attributes = b"".join(_field(1, _pair(k, v)) for k, v in resource.attributes.items())
        self._resource = _field(1, attributes)
        self._scope = _field(1, _field(1, SCOPE.encode()))
        self._pairs = _Kept()
        self._names: dict[str, bytes] = {}

    def encode(self, spans: Sequence[SpanRecord]) -> bytes:
        """The `ExportTraceServiceRequest` carrying `spans`."""
        if not spans:
            return b""
        encoded = [self._span(span) for span in spans]
        scope_spans = _field(2, self._scope + b"".join(encoded))
        return _field(1, self._resource + scope_spans)

    def _span(self, span: SpanRecord) -> bytes:
        """A `Span` as field 2 of `ScopeSpans`."""
        names = self._names
        name = names.get(span.name)
        if name is None:
            name = _field(5, span.name.encode())
            if len(names) < PAIRS_KEPT:
                names[span.name] = name
        parent = span.parent_id
        parts = [
            b"\x0a\x10",
            span.trace_id.to_bytes(16, "big"),
            b"\x12\x08",
            span.span_id.to_bytes(8, "big"),
            b"\x22\x08" + parent.to_bytes(8, "big") if parent else b"",
            name,
            _KINDS[span.kind],
            _TIMES.pack(0x39, span.start, 0x41, span.end),
        ]
        attributes = span.attributes
        if attributes:
            try:
                parts += map(self._pairs.__getitem__, attributes.items())
            except TypeError:  # an unhashable value (a list): encoded, not kept
                del parts[8:]
                parts += [_field(9, _pair(k, v)) for k, v in attributes.items()]
        if span.status:
            message = _field(2, span.message.encode()) if span.message else b""
            parts.append(_field(15, message + b"\x18" + _varint(span.status)))
        else:
            parts.append(b"\x7a\x00")  # an empty status, as the SDK writes it
        parts.append(_FLAGS[bool(parent) and span.remote_parent])
        body = b"".join(parts)
        return (
            b"\x12" + _LENGTHS[len(body)] if len(body) < _SHORT else _varint(18) + _varint(len(body))
        ) + body


class DirectOtlpExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP exporter (its headers, compression, timeout and retries) sending what `Encoder`
    writes from the records the `BatchSpanProcessor` batched, over `transport` (`otlp_http`)."""

    def __init__(self, resource: Resource, transport: BaseHTTPTransport, **options: Any) -> None:
        # The SDK's options: endpoint, headers, timeout, compression.
        super().__init__(**options, _transport=transport)
        self._encoder = Encoder(resource)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown:
            return SpanExportResult.FAILURE
        records: Sequence[Any] = spans  # SpanRecords: what the gateway hands the processor
        result = self._client.export(self._encoder.encode(records))
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
