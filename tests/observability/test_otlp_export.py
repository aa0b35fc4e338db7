"""The span exporter's own HTTP transport against a real OTLP receiver on loopback: the configured
headers and compression arrive, one connection serves successive exports, a collector that closes the
connection or refuses an export (503) still gets the spans."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult

from calcifer.observability.otlp_encoding import DirectOtlpExporter
from calcifer.observability.otlp_http import KeptConnection
from calcifer.observability.spans import SERVER, SpanRecord
from tests.fakes.otlp_receiver import OtlpReceiver

RESOURCE = Resource.create({"service.name": "gw"})


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    found = OtlpReceiver()
    yield found
    found.close()


def _exporter(receiver: OtlpReceiver, **options: object) -> DirectOtlpExporter:
    return DirectOtlpExporter(
        RESOURCE, KeptConnection(), endpoint=receiver.url + "/v1/traces", timeout=10, **options
    )


def _spans(first: int, count: int) -> list[SpanRecord]:
    spans = []
    for n in range(first, first + count):
        span = SpanRecord(7, n, 0, False, f"span {n}", SERVER, 1_000, {"n": n})
        span.end = 2_000
        spans.append(span)
    return spans


def _names(receiver: OtlpReceiver) -> list[str]:
    return [span.name for span in receiver.spans]


def test_an_export_carries_the_headers_and_the_compression(receiver: OtlpReceiver) -> None:
    exporter = _exporter(receiver, headers={"api-key": "abc"}, compression=Compression.Gzip)
    assert exporter.export(_spans(1, 3)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    [sent] = receiver.requests
    assert (sent["api-key"], sent["Content-Encoding"]) == ("abc", "gzip")
    assert sent["Content-Type"] == "application/x-protobuf"
    assert _names(receiver) == ["span 1", "span 2", "span 3"]
    assert [span.attributes["n"] for span in receiver.spans] == [1, 2, 3]
    assert {span.service for span in receiver.spans} == {"gw"}


def test_successive_exports_share_a_connection_until_the_collector_closes_it(
    receiver: OtlpReceiver,
) -> None:
    exporter = _exporter(receiver)
    for first in (1, 3):
        assert exporter.export(_spans(first, 2)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert receiver.peers[0] == receiver.peers[1]  # kept alive
    receiver.close_after_answer = True
    for first in (5, 7):
        assert exporter.export(_spans(first, 2)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert receiver.peers[2] == receiver.peers[1] and receiver.peers[3] != receiver.peers[2]  # reopened
    assert _names(receiver) == [f"span {n}" for n in range(1, 9)]


def test_a_refused_export_is_sent_again(receiver: OtlpReceiver) -> None:
    receiver.refuse = 1
    exporter = _exporter(receiver)
    assert exporter.export(_spans(1, 2)) is SpanExportResult.SUCCESS  # type: ignore[arg-type]
    assert _names(receiver) == ["span 1", "span 2"]  # once, after the 503


def test_an_unreachable_collector_fails_the_export_within_its_timeout() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/traces"
    exporter = DirectOtlpExporter(RESOURCE, KeptConnection(), endpoint=url, timeout=0.5)
    assert exporter.export(_spans(1, 1)) is SpanExportResult.FAILURE  # type: ignore[arg-type]
