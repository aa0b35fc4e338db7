"""The standard `OTEL_*` variables that turn tracing on and shape it, read from the gateway's settings
environment (so that a test, or two gateways in one process, can each have their own).

Tracing is on when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` used as is), unless `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`. Spans go over OTLP/HTTP (protobuf).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

_log = logging.getLogger("calcifer")


class OtelConfigError(ValueError):
    """An `OTEL_*` variable has a value tracing cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class OtelSettings:
    endpoint: str
    service_name: str = "calcifer"
    resource: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    compression: str = "none"
    sampler: Sampler = field(default_factory=lambda: ParentBased(ALWAYS_ON))
    schedule_delay_ms: float = 5000
    max_queue_size: int = 2048
    max_export_batch_size: int = 512
    export_timeout_ms: float = 30000
    certificate: str | None = None  # the CA bundle that verifies an https collector
    client_certificate: str | None = None  # and the gateway's own, with its key, for mutual TLS
    client_key: str | None = None


def otel_settings(env: Mapping[str, str]) -> OtelSettings | None:
    """What the environment asks of tracing, or None when tracing is off."""
    get = _reader(env)
    if get("OTEL_SDK_DISABLED").lower() == "true" or get("OTEL_TRACES_EXPORTER").lower() == "none":
        return None
    endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        base = get("OTEL_EXPORTER_OTLP_ENDPOINT")
        if not base:
            return None
        endpoint = base.rstrip("/") + "/v1/traces"
    protocol = get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if protocol and protocol != "http/protobuf":
        _log.warning(
            "tracing: OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; using http/protobuf", protocol
        )
    resource = _pairs(get("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES")
    service = get("OTEL_SERVICE_NAME") or resource.get("service.name") or "calcifer"
    headers = _pairs(
        get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or get("OTEL_EXPORTER_OTLP_HEADERS"),
        "OTEL_EXPORTER_OTLP_HEADERS",
    )
    compression = (
        get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION") or get("OTEL_EXPORTER_OTLP_COMPRESSION") or "none"
    ).lower()
    if compression not in ("none", "gzip", "deflate"):
        raise OtelConfigError(
            f"OTEL_EXPORTER_OTLP_COMPRESSION must be gzip, deflate or none, got {compression!r}"
        )
    timeout = _number(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 0) or _number(
        env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000
    )
    return OtelSettings(
        endpoint=endpoint,
        service_name=service,
        resource=resource,
        headers=headers,
        timeout=timeout / 1000,
        compression=compression,
        sampler=sampler(
            get("OTEL_TRACES_SAMPLER") or "parentbased_always_on", get("OTEL_TRACES_SAMPLER_ARG")
        ),
        schedule_delay_ms=_number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000),
        max_queue_size=int(_number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048)),
        max_export_batch_size=int(_number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)),
        export_timeout_ms=_number(env, "OTEL_BSP_EXPORT_TIMEOUT", 30000),
        certificate=_traces(get, "CERTIFICATE"),
        client_certificate=_traces(get, "CLIENT_CERTIFICATE"),
        client_key=_traces(get, "CLIENT_KEY"),
    )


def _traces(get: Callable[[str], str], name: str) -> str | None:
    """`OTEL_EXPORTER_OTLP_TRACES_<name>`, else `OTEL_EXPORTER_OTLP_<name>`, else None."""
    return get(f"OTEL_EXPORTER_OTLP_TRACES_{name}") or get(f"OTEL_EXPORTER_OTLP_{name}") or None


def sampler(name: str, argument: str) -> Sampler:
    """The sampler `OTEL_TRACES_SAMPLER` names (with `OTEL_TRACES_SAMPLER_ARG`, the ratio)."""
    name = name.strip().lower()
    try:
        ratio = float(argument) if argument else 1.0
    except ValueError:
        raise OtelConfigError(f"OTEL_TRACES_SAMPLER_ARG must be a number, got {argument!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise OtelConfigError(f"OTEL_TRACES_SAMPLER_ARG must be between 0 and 1, got {argument!r}")
    roots: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(ratio),
    }
    if name in roots:
        return roots[name]
    if name.startswith("parentbased_") and name[12:] in roots:
        return ParentBased(roots[name[12:]])
    choices = ", ".join([*roots, *(f"parentbased_{r}" for r in roots)])
    raise OtelConfigError(f"OTEL_TRACES_SAMPLER must be one of {choices}, got {name!r}")


def _reader(env: Mapping[str, str]) -> Callable[[str], str]:
    def get(name: str) -> str:
        return env.get(name, "").strip()

    return get


def _pairs(raw: str, name: str) -> dict[str, str]:
    """`k1=v1,k2=v2` (values percent-decoded), as the OTel spec writes headers and resource attributes."""
    found: dict[str, str] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise OtelConfigError(f"{name} must be a list of key=value pairs, got {part.strip()!r}")
        found[key.strip()] = unquote(value.strip())
    return found


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise OtelConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise OtelConfigError(f"{name} must not be negative, got {raw!r}")
    return value
