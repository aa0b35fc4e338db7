"""A span as the request path records it: a small slotted record (ids, name, kind, times, attributes,
status), handed whole to the OpenTelemetry SDK's `BatchSpanProcessor` when it ends. The processor's
worker thread batches records and gives them to the exporter, which writes them as OTLP protobuf
(`otlp_encoding`); nothing on the request path builds an SDK span, a `SpanContext` or a protobuf object.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from opentelemetry.trace import SpanContext, TraceFlags

SERVER, CLIENT = 2, 3  # OTLP's SpanKind numbers
UNSET, ERROR = 0, 2  # OTLP's status codes

_getrandbits = random.getrandbits


def new_id(bits: int) -> int:
    """A random trace (128 bits) or span (64 bits) id, never the invalid 0 (the SDK's id generator)."""
    found = _getrandbits(bits)
    while not found:
        found = _getrandbits(bits)
    return found


class SpanRecord:
    """One span. `attributes` is None for a span the sampler dropped: it still has ids, for the
    `traceparent` sent upstream, but nothing is recorded or exported."""

    __slots__ = (
        "attributes",
        "end",
        "kind",
        "message",
        "name",
        "parent_id",
        "remote_parent",
        "span_id",
        "start",
        "status",
        "trace_id",
    )
    # What `BatchSpanProcessor.on_end` checks before queueing a span: only sampled records reach it.
    context: ClassVar[SpanContext] = SpanContext(1, 1, False, TraceFlags(TraceFlags.SAMPLED))

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int,
        remote_parent: bool,
        name: str,
        kind: int,
        start: int,
        attributes: dict[str, Any] | None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id  # 0: a root span
        self.remote_parent = remote_parent
        self.name = name
        self.kind = kind
        self.start = start  # ns since the epoch
        self.end = 0
        self.attributes = attributes
        self.status = UNSET
        self.message = ""

    @property
    def sampled(self) -> bool:
        return self.attributes is not None

    def traceparent(self) -> bytes:
        """The W3C `traceparent` naming this span as the parent."""
        flags = "01" if self.attributes is not None else "00"
        return f"00-{self.trace_id:032x}-{self.span_id:016x}-{flags}".encode()
