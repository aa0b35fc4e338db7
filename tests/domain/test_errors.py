"""Typed domain errors: what the HTTP edge's one table reads from them."""

from __future__ import annotations

import pytest

from calcifer.domain.errors import (
    DuplicateModel,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    ProviderError,
    ProviderNotConfigured,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)


def test_gateway_error_carries_message_and_param() -> None:
    error = InvalidRequest("messages must be a list", param="messages")
    assert str(error) == error.message == "messages must be a list"
    assert error.param == "messages"
    assert error.kind == "invalid_request_error"
    assert error.code is None
    assert GatewayError("x").kind == "server_error"


def test_model_not_found_names_the_model() -> None:
    error = ModelNotFound("gpt-9")
    assert isinstance(error, GatewayError)
    assert "'gpt-9'" in error.message
    assert error.model == "gpt-9"
    assert error.param == "model"
    assert error.code == "model_not_found"
    assert error.kind == "invalid_request_error"


def test_provider_not_configured_names_the_setting() -> None:
    error = ProviderNotConfigured("openai", "OPENAI_API_KEY")
    assert "OPENAI_API_KEY" in error.message
    assert "openai" in error.message
    assert (error.provider, error.setting) == ("openai", "OPENAI_API_KEY")
    assert error.code == "provider_not_configured"


def test_duplicate_model_is_a_startup_error_not_a_client_error() -> None:
    assert issubclass(DuplicateModel, ValueError)
    assert not issubclass(DuplicateModel, GatewayError)


def test_provider_error_defaults() -> None:
    error = ProviderError("boom")
    assert error.status == 502
    assert error.retry_after is None
    assert error.retryable is False
    assert error.kind == "server_error"
    assert error.code is None
    assert error.param is None


def test_provider_error_overrides_apply_to_the_instance_only() -> None:
    error = UpstreamRejected("bad", status=422, kind="custom_kind", code="bad_thing", param="tools")
    assert (error.status, error.kind, error.code, error.param) == (422, "custom_kind", "bad_thing", "tools")
    assert UpstreamRejected("other").kind == "invalid_request_error"
    assert UpstreamRejected("other").code is None


def test_overrides_of_none_keep_the_class_defaults() -> None:
    error = UpstreamRateLimited("slow down", status=429, retry_after=1.5)
    assert error.kind == "rate_limit_error"
    assert error.code == "rate_limit_exceeded"
    assert error.retry_after == 1.5


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (UpstreamRejected, False),
        (UpstreamRateLimited, True),
        (UpstreamUnavailable, True),
        (UpstreamTimeout, True),
    ],
)
def test_which_upstream_errors_are_retryable(cls: type[ProviderError], retryable: bool) -> None:
    assert cls("x").retryable is retryable
    assert issubclass(cls, ProviderError)


def test_timeout_kind_and_code() -> None:
    error = UpstreamTimeout("took too long", status=504)
    assert (error.kind, error.code, error.status) == ("timeout", "upstream_timeout", 504)
