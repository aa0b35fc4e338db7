"""The shared I/O shell of HTTP providers: one pooled client, SSE reading, and error mapping, once."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager

import orjson

from calcifer.domain.errors import (
    ProviderError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from calcifer.domain.types import JSONObject, NativeCall
from calcifer.providers.client import ClientError, HttpClient, ResponseError

# Upstream statuses that mean "try again" rather than "your request is wrong".
_RETRYABLE_4XX = {408, 409, 429}
ErrorFields = tuple[str, str | None, str | None, str | None]  # message, type, code, param
ErrorFor = Callable[[int, bytes, Mapping[str, str]], ProviderError]  # status, body, headers -> the error


def new_client(timeout: float, headers: Mapping[str, str]) -> HttpClient:
    """A keep-alive connection pool for one provider, owned by the app's lifespan."""
    return HttpClient(headers=headers, connect_timeout=min(timeout, 10.0), read_timeout=timeout)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` given in seconds or as an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def openai_error_fields(body: bytes) -> ErrorFields | None:
    """Message, type, code and param of an OpenAI-shaped error body, when it is one."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    if not isinstance(message, str):
        return None

    def text(key: str) -> str | None:
        value = error.get(key)
        return value if isinstance(value, str) else None

    return message, text("type"), text("code"), text("param")


def error_for_status(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    provider: str,
    parse: Callable[[bytes], ErrorFields | None] = openai_error_fields,
) -> ProviderError:
    """The typed error for an upstream's non-2xx answer, keeping its status, message and retry hint."""
    fields = parse(body)
    if fields is None:
        snippet = body[:200].decode("utf-8", "replace").strip()
        fields = (
            f"{provider} answered HTTP {status}" + (f": {snippet}" if snippet else ""),
            None,
            None,
            None,
        )
    message, kind, code, param = fields
    retry_after = retry_after_seconds(headers)
    if status == 429:
        return UpstreamRateLimited(
            message,
            status=429,
            kind=kind or "rate_limit_error",
            code=code,
            param=param,
            retry_after=retry_after,
        )
    if status >= 500 or status in _RETRYABLE_4XX:
        return UpstreamUnavailable(
            message,
            status=status,
            kind=kind or "server_error",
            code=code,
            param=param,
            retry_after=retry_after,
        )
    return UpstreamRejected(
        message, status=status, kind=kind or "invalid_request_error", code=code, param=param
    )


@contextmanager
def transport_errors(provider: str) -> Iterator[None]:
    """Turn transport failures into typed provider errors (never leaking headers or keys)."""
    try:
        yield
    except TimeoutError as exc:
        raise UpstreamTimeout(f"{provider} did not answer in time", status=504) from exc
    except ResponseError as exc:
        raise UpstreamUnavailable(f"{provider} broke off its answer: {exc}") from exc
    except ClientError as exc:
        raise UpstreamUnavailable(f"could not reach {provider}: {exc}") from exc


def native_payload(native: NativeCall, model: str) -> bytes:
    """A client's native request as sent to `model`: its own bytes (or its object encoded) when it asked
    for that model, else its object with only `model` renamed."""
    if native.body.get("model") == model:
        return native.raw if native.raw is not None else orjson.dumps(native.body)
    return orjson.dumps({**native.body, "model": model})


async def post_json(
    client: HttpClient,
    url: str,
    payload: bytes,
    provider: str,
    error: ErrorFor,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, Mapping[str, str]]:
    """POST a JSON body (`timeout` bounds the whole call) and return the upstream's 200 answer and its
    headers; any other status raises `error(status, body, headers)`, a transport failure its typed error."""
    with transport_errors(provider):
        async with client.post(url, data=payload, headers=headers, timeout=timeout) as response:
            raw = await response.read()
            if response.status != 200:
                raise error(response.status, raw, response.headers)
    return raw, response.headers


async def sse_events(pieces: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Server-sent events from a response body, as (event name, data) pairs, as they arrive.

    The body is read in whatever pieces the network delivers and split on blank lines, rather than
    line by line: a burst of events costs one read, not two per event.
    """
    pending = b""
    async for piece in pieces:
        pending += piece
        if b"\r" in pending:
            pending = pending.replace(b"\r\n", b"\n")
        if b"\n\n" not in pending:
            continue
        *blocks, pending = pending.split(b"\n\n")
        for block in blocks:
            parsed = _sse_block(block)
            if parsed is not None:
                yield parsed
    if pending.strip():
        parsed = _sse_block(pending)
        if parsed is not None:
            yield parsed


def _sse_block(block: bytes) -> tuple[str, bytes] | None:
    """One event's lines: its `event:` name and its `data:` lines joined (None when it has no data)."""
    if block.startswith(b"data: ") and b"\n" not in block:  # nearly every event: one `data:` line
        return "", block[6:]
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("utf-8", "replace")
    return (event, b"\n".join(data)) if data else None


def json_object(raw: bytes, provider: str, what: str = "a body") -> JSONObject:
    """An upstream's JSON object (`what`: a body, a stream event), or an `UpstreamUnavailable` saying
    what was wrong with it."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamUnavailable(f"{provider} answered with {what} that is not JSON") from exc
    if not isinstance(parsed, dict):
        raise UpstreamUnavailable(f"{provider} answered with {what} that is not a JSON object")
    return parsed


class HttpProvider:
    """What every HTTP provider shares: a name and models, a key and the setting it comes from, and one
    pooled client, opened at start-up and closed at shutdown. Subclasses add their wire format and the
    headers that carry the key (`_client_headers`)."""

    def __init__(
        self,
        *,
        name: str,
        models: frozenset[str],
        api_key: str | None,
        timeout: float,
        credential_setting: str,
        key_required: bool = True,
    ) -> None:
        self.name = name
        self.models = models
        self._api_key = api_key
        self._timeout = timeout
        self._credential_setting = credential_setting
        self._key_required = key_required
        self._pool: HttpClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self._api_key) or not self._key_required

    @property
    def credential_setting(self) -> str:
        return self._credential_setting

    def supports(self, model: str) -> bool:
        return model in self.models

    def _client_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    async def start(self) -> None:
        if self._pool is None:
            self._pool = new_client(self._timeout, self._client_headers())

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _client(self) -> HttpClient:
        if self._pool is None:
            raise UpstreamUnavailable(f"{self.name} client is not started")
        return self._pool

    def _error(self, status: int, raw: bytes, headers: Mapping[str, str]) -> ProviderError:
        """The typed error for a non-2xx answer (a subclass reads its vendor's error body)."""
        return error_for_status(status, raw, headers, self.name, openai_error_fields)

    async def _post(self, url: str, payload: bytes) -> bytes:
        """POST a JSON body and return the upstream's 200 answer (any other status is its error)."""
        raw, _ = await post_json(self._client(), url, payload, self.name, self._error, timeout=self._timeout)
        return raw
