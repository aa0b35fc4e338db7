"""Settings from the environment: the original defaults, durations, and errors naming the variable."""

from __future__ import annotations

from decimal import Decimal

import pytest

from calcifer.config.settings import ConfigError, Settings, duration
from calcifer.domain.limits import MAX_BUDGET


def test_defaults_are_the_originals() -> None:
    s = Settings.from_env({})
    assert s.port == 8080 and s.read_timeout == 30 and s.write_timeout == 30
    assert s.cors_origins == ("*",)
    # The original defaults, and what browser clients of the gateway need besides (the admin API's
    # PATCH; the Anthropic SDK's x-api-key and anthropic-* headers; both SDKs' x-stainless-* headers).
    assert s.cors_methods == ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert s.cors_headers[:2] == ("Content-Type", "Authorization")
    assert {"x-api-key", "anthropic-version", "anthropic-beta", "x-stainless-*"} <= set(s.cors_headers)
    assert s.openai.api_key is None and s.openai.base_url == "https://api.openai.com/v1"
    assert s.openai.timeout == 60 and s.openai.max_retries == 3
    assert s.max_body_bytes == 32 * 1024 * 1024
    assert s.max_header_bytes == 64 * 1024 and s.max_headers == 100


def test_values_are_read() -> None:
    s = Settings.from_env(
        {
            "SERVER_PORT": "9000",
            "SERVER_READ_TIMEOUT": "500ms",
            "SERVER_WRITE_TIMEOUT": "2m",
            "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example",
            "CORS_ALLOWED_METHODS": "get,post",
            "OPENAI_API_KEY": " sk-x ",
            "OPENAI_BASE_URL": "http://127.0.0.1:1234/v1/",
            "OPENAI_TIMEOUT": "1h",
            "OPENAI_MAX_RETRIES": "0",
            "CALCIFER_MAX_BODY_SIZE": "1KiB",
            "CALCIFER_LOG_LEVEL": "WARNING",
        }
    )
    assert s.port == 9000 and s.read_timeout == 0.5 and s.write_timeout == 120
    assert s.cors_origins == ("https://a.example", "https://b.example") and s.cors_methods == ("GET", "POST")
    assert s.openai.api_key == "sk-x" and s.openai.base_url == "http://127.0.0.1:1234/v1"
    assert s.openai.timeout == 3600 and s.openai.max_retries == 0
    assert s.max_body_bytes == 1024 and s.log_level == "warning"


@pytest.mark.parametrize(
    ("raw", "seconds"), [("30s", 30), ("500ms", 0.5), ("2m", 120), ("1.5", 1.5), ("1h", 3600)]
)
def test_durations(raw: str, seconds: float) -> None:
    assert duration({"X": raw}, "X", "1s") == seconds


def test_the_shutdown_pause_is_off_by_default_and_may_be_zero() -> None:
    assert Settings.from_env({}).shutdown_delay == 0
    assert Settings.from_env({"CALCIFER_SHUTDOWN_DELAY": "0"}).shutdown_delay == 0
    assert Settings.from_env({"CALCIFER_SHUTDOWN_DELAY": "5s"}).shutdown_delay == 5
    with pytest.raises(ConfigError, match="CALCIFER_SHUTDOWN_GRACE"):
        Settings.from_env({"CALCIFER_SHUTDOWN_GRACE": "0"})  # the grace may not


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SERVER_PORT", "http"),
        ("SERVER_PORT", "70000"),
        ("SERVER_READ_TIMEOUT", "30 parsecs"),
        ("SERVER_WRITE_TIMEOUT", "0"),
        ("OPENAI_TIMEOUT", "-5s"),
        ("OPENAI_MAX_RETRIES", "three"),
        ("OPENAI_MAX_RETRIES", "-1"),
        ("OPENAI_BASE_URL", "api.openai.com"),
        ("CORS_ALLOWED_ORIGINS", " , "),
        ("CALCIFER_MAX_BODY_SIZE", "lots"),
        ("CALCIFER_MAX_BODY_SIZE", "0"),
        ("CALCIFER_LOG_LEVEL", "chatty"),
        ("CALCIFER_WORKERS", "0"),
        ("CALCIFER_SHUTDOWN_DELAY", "soon"),
        ("CALCIFER_CUSTOMER_BUDGET", "lots"),
        ("CALCIFER_CUSTOMER_BUDGET", "-1"),
        ("CALCIFER_CUSTOMER_BUDGET", "NaN"),
        ("CALCIFER_CUSTOMER_BUDGET", str(MAX_BUDGET + 1)),
        ("CALCIFER_CUSTOMER_BUDGET", "1e100"),
        ("CALCIFER_TRUSTED_PROXIES", "10.0.0.0/8,nginx"),
        ("CALCIFER_TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_invalid_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_a_customer_budget_up_to_the_largest_supported_is_kept_exactly() -> None:
    assert Settings.from_env({"CALCIFER_CUSTOMER_BUDGET": str(MAX_BUDGET)}).customer_budget == MAX_BUDGET
    assert Settings.from_env({"CALCIFER_CUSTOMER_BUDGET": "0.10"}).customer_budget == Decimal("0.10")
    assert Settings.from_env({}).customer_budget is None


def test_responses_are_kept_thirty_days_unless_told_otherwise() -> None:
    assert Settings.from_env({}).responses_retention == 30 * 86400
    assert Settings.from_env({"CALCIFER_RESPONSES_RETENTION": "7d"}).responses_retention == 7 * 86400
    assert Settings.from_env({"CALCIFER_RESPONSES_RETENTION": "12h"}).responses_retention == 12 * 3600
    with pytest.raises(ConfigError, match="CALCIFER_RESPONSES_RETENTION"):
        Settings.from_env({"CALCIFER_RESPONSES_RETENTION": "forever"})


def test_no_proxy_is_trusted_unless_listed() -> None:
    assert Settings.from_env({}).trusted_proxies == ()
    listed = Settings.from_env({"CALCIFER_TRUSTED_PROXIES": " 10.1.2.3/8, 192.168.0.7 ,fd00::/8,"})
    assert [str(network) for network in listed.trusted_proxies] == [
        "10.0.0.0/8",
        "192.168.0.7/32",
        "fd00::/8",
    ]
