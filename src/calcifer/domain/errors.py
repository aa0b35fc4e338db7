"""Typed domain errors. The HTTP edge maps each to a status and an error body in one table."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    kind = "server_error"
    code: str | None = None
    refusal: str | None = None
    """Set on the errors that refuse a request by policy: "budget", "rate_limit" or "auth"."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class InvalidRequest(GatewayError):
    kind = "invalid_request_error"


class ApiNotOffered(InvalidRequest):
    """The model's provider does not offer the API the request needs (e.g. embeddings)."""

    code = "unsupported_api"


class ModelNotFound(GatewayError):
    kind = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model '{model}' does not exist or is not routable by this gateway.", param="model"
        )
        self.model = model


class ProviderNotConfigured(GatewayError):
    """A model's provider is known but cannot be called (no credentials)."""

    kind = "provider_not_configured"
    code = "provider_not_configured"

    def __init__(self, provider: str, setting: str) -> None:
        super().__init__(
            f"The {provider} provider is not configured: set {setting} in the gateway's environment."
        )
        self.provider = provider
        self.setting = setting


class DuplicateModel(ValueError):
    """Two providers claim the same model: a start-up error, never a request error."""


class ProviderError(GatewayError):
    """Something went wrong talking to an upstream provider.

    When the call was a client's native call (`NativeCall`), `api` names its API and `body` is the
    upstream's own error body, which the route of that API relays unchanged."""

    retryable = False
    api = ""
    body: bytes | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int = 502,
        kind: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.status = status
        if kind is not None:
            self.kind = kind
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class UpstreamRejected(ProviderError):
    """The upstream refused the request (a 4xx other than 408/409/429): passed to the client as is."""

    kind = "invalid_request_error"


class UpstreamRateLimited(ProviderError):
    kind = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True


class UpstreamUnavailable(ProviderError):
    """A 5xx, 408 or 409 from upstream, or a broken connection."""

    retryable = True


class UpstreamTimeout(ProviderError):
    kind = "timeout"
    code = "upstream_timeout"
    retryable = True
