"""Settings from the environment, validated once at start-up.

An invalid value stops start-up with a `ConfigError` naming the variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from ipaddress import IPv4Network, IPv6Network, ip_network

from calcifer.domain.limits import MAX_BUDGET

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kib|kb|mib|mb|gib|gb)?\s*$", re.IGNORECASE)
_SIZE_BYTES = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


# What a browser client of the gateway sends: the admin API's PATCH, and the headers of the OpenAI and
# Anthropic SDKs (`x-api-key`, `anthropic-*`, their `x-stainless-*` telemetry) and of the gateway itself.
CORS_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"
CORS_HEADERS = (
    "Content-Type,Authorization,x-api-key,anthropic-version,anthropic-beta,"
    "anthropic-dangerous-direct-browser-access,openai-organization,openai-project,x-stainless-*,"
    "x-request-id,x-calcifer-cache,Cache-Control"
)


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    api_key: str | None
    base_url: str
    timeout: float
    max_retries: int


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    read_timeout: float = 30.0
    write_timeout: float = 30.0
    cors_origins: tuple[str, ...] = ("*",)
    cors_methods: tuple[str, ...] = tuple(CORS_METHODS.split(","))
    cors_headers: tuple[str, ...] = tuple(CORS_HEADERS.split(","))
    openai: ProviderSettings = ProviderSettings(None, "https://api.openai.com/v1", 60.0, 3)
    max_body_bytes: int = 32 * 1024 * 1024
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    shutdown_grace: float = 30.0
    shutdown_delay: float = 0.0
    log_level: str = "info"
    workers: int = 1
    master_key: str | None = None
    database_url: str = "sqlite:///./calcifer.db"
    database_schema: str | None = None
    ledger_journal: str | None = None  # a directory: each ledger row is journalled there until written
    redis_url: str | None = None
    config_file: str | None = None
    responses_retention: float = 30 * 86400.0  # how long stored Responses API answers are kept
    metrics: bool = True  # CALCIFER_METRICS=off: no metrics recorded, no /metrics
    metrics_port: int | None = None  # serve /metrics on this port instead of the gateway's
    metrics_token: str | None = None  # a scrape must send `Authorization: Bearer <token>`
    migrate: bool = True  # serve applies pending migrations at start-up (CALCIFER_MIGRATE=off: never)
    customer_budget: Decimal | None = None  # each end customer's default budget (USD), None: none
    customer_budget_period: str = "daily"
    # proxies whose X-Forwarded-For names the client (the console's login throttle); none by default
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    env: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            host=env.get("SERVER_HOST", "0.0.0.0").strip() or "0.0.0.0",
            port=_port(env, "SERVER_PORT", 8080),
            read_timeout=duration(env, "SERVER_READ_TIMEOUT", "30s"),
            write_timeout=duration(env, "SERVER_WRITE_TIMEOUT", "30s"),
            cors_origins=_csv(env, "CORS_ALLOWED_ORIGINS", "*"),
            cors_methods=tuple(m.upper() for m in _csv(env, "CORS_ALLOWED_METHODS", CORS_METHODS)),
            cors_headers=_csv(env, "CORS_ALLOWED_HEADERS", CORS_HEADERS),
            openai=provider_settings(env, "OPENAI", "https://api.openai.com/v1"),
            max_body_bytes=_size(env, "CALCIFER_MAX_BODY_SIZE", "32MiB"),
            max_header_bytes=_size(env, "CALCIFER_MAX_HEADER_SIZE", "64KiB"),
            max_headers=_int(env, "CALCIFER_MAX_HEADERS", 100, minimum=1),
            shutdown_grace=duration(env, "CALCIFER_SHUTDOWN_GRACE", "30s"),
            shutdown_delay=duration(env, "CALCIFER_SHUTDOWN_DELAY", "0s", allow_zero=True),
            log_level=_choice(env, "CALCIFER_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            workers=_int(env, "CALCIFER_WORKERS", 1, minimum=1),
            master_key=_master_key(env, "CALCIFER_MASTER_KEY"),
            database_url=_url(
                env, "CALCIFER_DATABASE_URL", "sqlite:///./calcifer.db", ("sqlite", "postgresql")
            ),
            database_schema=env.get("CALCIFER_DATABASE_SCHEMA", "").strip() or None,
            ledger_journal=env.get("CALCIFER_LEDGER_JOURNAL", "").strip() or None,
            redis_url=_url(env, "CALCIFER_REDIS_URL", "", ("redis", "rediss", "unix")) or None,
            config_file=env.get("CALCIFER_CONFIG", "").strip() or None,
            responses_retention=duration(env, "CALCIFER_RESPONSES_RETENTION", "30d"),
            metrics=_choice(env, "CALCIFER_METRICS", "on", ("on", "off")) == "on",
            metrics_port=_port(env, "CALCIFER_METRICS_PORT", 0) or None,
            metrics_token=env.get("CALCIFER_METRICS_TOKEN", "").strip() or None,
            migrate=_choice(env, "CALCIFER_MIGRATE", "on", ("on", "off")) == "on",
            customer_budget=_usd(env, "CALCIFER_CUSTOMER_BUDGET"),
            customer_budget_period=_choice(
                env, "CALCIFER_CUSTOMER_BUDGET_PERIOD", "daily", ("total", "daily", "weekly", "monthly")
            ),
            trusted_proxies=_networks(env, "CALCIFER_TRUSTED_PROXIES"),
            env=dict(env),
        )


def provider_settings(env: Mapping[str, str], prefix: str, default_url: str) -> ProviderSettings:
    """`<PREFIX>_API_KEY`, `_BASE_URL`, `_TIMEOUT` (default 60s) and `_MAX_RETRIES` (default 3)."""
    base_url = env.get(f"{prefix}_BASE_URL", "").strip() or default_url
    if not re.match(r"^https?://[^\s/]+", base_url):
        raise ConfigError(f"{prefix}_BASE_URL must be an http(s) URL, got {base_url!r}")
    key = env.get(f"{prefix}_API_KEY", "").strip() or None
    return ProviderSettings(
        api_key=key,
        base_url=base_url.rstrip("/"),
        timeout=duration(env, f"{prefix}_TIMEOUT", "60s"),
        max_retries=_int(env, f"{prefix}_MAX_RETRIES", 3, minimum=0),
    )


_WELL_KNOWN_KEYS = {
    "sk-1234",
    "sk-12345678",
    "changeme",
    "password",
    "secret",
    "master",
    "admin",
    "test",
    "sk-master",
    "sk-admin",
    "letmein",
    "12345678",
    "sk-1234567890",
}
MIN_MASTER_KEY_LENGTH = 24


def _master_key(env: Mapping[str, str], name: str) -> str | None:
    """The master key, refused when it is short, well known, or made of one repeated character."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if raw.lower() in _WELL_KNOWN_KEYS or len(set(raw)) < 6:
        raise ConfigError(f"{name} is a well-known or trivially guessable key; use a long random secret")
    if len(raw) < MIN_MASTER_KEY_LENGTH:
        raise ConfigError(f"{name} must be at least {MIN_MASTER_KEY_LENGTH} characters long")
    return raw


def _url(env: Mapping[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip() or default
    if raw and raw.split(":", 1)[0].split("+", 1)[0] not in schemes:
        raise ConfigError(
            f"{name} must be a URL with scheme {' or '.join(schemes)}, got {raw.split(':', 1)[0]!r}"
        )
    return raw


def duration(env: Mapping[str, str], name: str, default: str, *, allow_zero: bool = False) -> float:
    """A duration such as `30s`, `500ms`, `2m`, `1h`, `30d` (a bare number is seconds), in seconds;
    greater than zero unless `allow_zero`."""
    raw = env.get(name, "").strip() or default
    match = _DURATION.match(raw)
    if not match:
        raise ConfigError(f"{name} must be a duration such as 30s, 500ms or 2m, got {raw!r}")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0 and not allow_zero:
        raise ConfigError(f"{name} must be greater than zero, got {raw!r}")
    return seconds


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default, minimum=0)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port (0-65535), got {value}")
    return value


def _size(env: Mapping[str, str], name: str, default: str) -> int:
    raw = env.get(name, "").strip() or default
    match = _SIZE.match(raw)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"{name} must be a size such as 32MiB or 1048576, got {raw!r}")
    return int(match.group(1)) * _SIZE_BYTES[(match.group(2) or "b").lower()]


def _csv(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    raw = env.get(name)
    items = tuple(p.strip() for p in (default if raw is None else raw).split(",") if p.strip())
    if not items:
        raise ConfigError(f"{name} must list at least one value (comma-separated)")
    return items


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name, "").strip() or default).lower()
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _networks(env: Mapping[str, str], name: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated addresses or CIDR blocks (`10.0.0.0/8`, `::1`); none when unset."""
    found = []
    for item in env.get(name, "").split(","):
        if item.strip():
            try:
                found.append(ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"{name} must list IP addresses or CIDR blocks, got {item.strip()!r}"
                ) from None
    return tuple(found)


def _usd(env: Mapping[str, str], name: str) -> Decimal | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{name} must be a number of USD such as 1 or 0.50, got {text!r}") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_BUDGET:
        raise ConfigError(
            f"{name} must be a non-negative number of USD of at most {MAX_BUDGET}, got {text!r}"
        )
    return amount
