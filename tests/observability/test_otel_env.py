"""Which `OTEL_*` settings turn tracing on, and how each is read (a bad value names its variable)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

from calcifer.observability.otel_env import OtelConfigError, otel_settings, sampler

BASE = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}


def test_tracing_is_off_unless_an_endpoint_is_set_and_not_disabled() -> None:
    assert otel_settings({}) is None
    assert otel_settings({**BASE, "OTEL_SDK_DISABLED": "true"}) is None
    assert otel_settings({**BASE, "OTEL_TRACES_EXPORTER": "none"}) is None
    on = otel_settings(BASE)
    assert on is not None and on.endpoint == "http://collector:4318/v1/traces"
    assert on.service_name == "calcifer" and isinstance(on.sampler, ParentBased)
    own = otel_settings({**BASE, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:9/traces"})
    assert own is not None and own.endpoint == "http://other:9/traces"  # used as is


def test_every_setting_is_read() -> None:
    found = otel_settings(
        {
            **BASE,
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-resource,deployment.environment=prod%20eu",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc,x-tenant=t1",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BSP_MAX_QUEUE_SIZE": "10",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5",
            "OTEL_BSP_EXPORT_TIMEOUT": "1000",
            "OTEL_TRACES_SAMPLER": "traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/etc/traces-ca.pem",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/etc/gw.pem",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY": "/etc/gw.key",
        }
    )
    assert found is not None
    assert found.certificate == "/etc/traces-ca.pem"  # the traces' own first
    assert (found.client_certificate, found.client_key) == ("/etc/gw.pem", "/etc/gw.key")
    assert found.service_name == "from-resource"
    assert found.resource["deployment.environment"] == "prod eu"
    assert found.headers == {"api-key": "abc", "x-tenant": "t1"}
    assert (found.compression, found.timeout) == ("gzip", 2.5)
    assert (found.schedule_delay_ms, found.max_queue_size, found.max_export_batch_size) == (100, 10, 5)
    assert found.export_timeout_ms == 1000
    assert isinstance(found.sampler, TraceIdRatioBased) and found.sampler.rate == 0.25
    named = otel_settings({**BASE, "OTEL_SERVICE_NAME": "gw", "OTEL_RESOURCE_ATTRIBUTES": "service.name=x"})
    assert named is not None and named.service_name == "gw"


def test_samplers() -> None:
    assert sampler("always_on", "") is ALWAYS_ON
    assert sampler("ALWAYS_OFF", "") is ALWAYS_OFF
    assert isinstance(sampler("parentbased_traceidratio", "0.5"), ParentBased)
    assert isinstance(sampler("parentbased_always_off", ""), ParentBased)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(OtelConfigError, match=named):
        otel_settings({**BASE, **env})
