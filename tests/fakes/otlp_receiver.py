"""A real OTLP/HTTP trace receiver on loopback: `POST /v1/traces` bodies decoded with the official
`opentelemetry-proto` package into plain spans the tests can read."""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from tests.fakes.threaded import AiohttpServer


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str  # SERVER, CLIENT, ...
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root
    attributes: dict[str, Any]
    status: str  # UNSET, OK, ERROR
    start_ns: int
    end_ns: int
    service: str


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests: list[dict[str, str]] = []  # the headers of each export
        self.peers: list[object] = []  # the (address, port) each export came from: one per connection
        self.refuse = 0  # answer this many of the next exports 503 (a collector that is overloaded)
        self.close_after_answer = False  # answer with `Connection: close`, then close
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._server = AiohttpServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def close(self) -> None:
        self._server.close()

    def wait_for(self, count: int, timeout: float = 20) -> list[ReceivedSpan]:
        """The spans received, once there are at least `count` (polling: exports arrive in batches)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} spans, received {len(self.spans)}")

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            refused, self.refuse = self.refuse > 0, max(self.refuse - 1, 0)
        if refused:
            return web.Response(status=503, text="overloaded")
        # aiohttp inflates a body whose Content-Encoding it supports; inflate what it left compressed.
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip" and body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        elif encoding == "deflate" and body[:1] == b"\x78":
            body = zlib.decompress(body)
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        found: list[ReceivedSpan] = []
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(_span(span, str(resource.get("service.name", ""))))
        with self._lock:
            self.requests.append(dict(request.headers))
            self.peers.append(request.transport.get_extra_info("peername") if request.transport else None)
            self.spans.extend(found)
        headers = {"Connection": "close"} if self.close_after_answer else None
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
            headers=headers,
        )


def _span(span: ProtoSpan, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes={a.key: _value(a.value) for a in span.attributes},
        status=["UNSET", "OK", "ERROR"][span.status.code],
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        service=service,
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None
