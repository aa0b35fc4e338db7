"""Ports: what the domain needs from the outside world, as small Protocols.

Adapters implement these; each port has one contract test suite every adapter passes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from calcifer.domain.levels import Owners
from calcifer.domain.types import ChatRequest, ChatResponse, StoredResponse, StreamChunk, StreamOutcome


@runtime_checkable
class Provider(Protocol):
    """An upstream LLM provider. Providers only translate; pricing and policy stay in the domain."""

    name: str
    models: frozenset[str]

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer a non-streamed request in OpenAI's `chat.completion` shape."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        """Answer a streamed request as OpenAI `chat.completion.chunk`s, the usage chunk last."""
        ...

    def supports(self, model: str) -> bool:
        """Whether this provider serves `model`."""
        ...


@runtime_checkable
class NativeApis(Protocol):
    """A provider that can also send a request in an API's own wire format (`ChatRequest.native`):
    Anthropic's adapter speaks "anthropic.messages", OpenAI's "openai.responses". Given a request with
    `native` set, it sends that call (only `model` renamed), answers with `ChatResponse.api` set and the
    upstream's answer as `body`, and streams the upstream's own events (`StreamChunk.data` the event's
    JSON, `raw` its SSE frame), with usage lifted out as for any answer."""

    native_apis: frozenset[str]


def speaks(provider: object, api: str, model: str) -> bool:
    """Whether `provider` sends `model` a call of `api` natively. A provider that speaks an API for
    only some of its models (Bedrock: the Messages API for Claude alone) says which through
    `native_apis_for(model)`; any other, through `native_apis`."""
    per_model = getattr(provider, "native_apis_for", None)
    apis = per_model(model) if per_model is not None else getattr(provider, "native_apis", ())
    return api in apis


@runtime_checkable
class NativeResources(Protocol):
    """A provider that keeps what its native API made (OpenAI's stored responses) and can be asked for
    it again: `method` and `path` relative to its API's base URL (e.g. "GET", "responses/resp_1"),
    `query` without the `?`. Answers the upstream's status, content type and body, unchanged."""

    async def native_request(self, method: str, path: str, query: str = "") -> tuple[int, str, bytes]: ...


class ResponseStore(Protocol):
    """Where the Responses API's stored answers are kept until they expire. Reads never return an
    expired response; `chain` follows `previous_id` links back from `response_id` (oldest first, the
    response itself last; empty when it is unknown or expired)."""

    async def put(self, response: StoredResponse) -> None: ...

    async def get(self, response_id: str, now: datetime) -> StoredResponse | None: ...

    async def chain(self, response_id: str, now: datetime) -> tuple[StoredResponse, ...]: ...

    async def delete(self, response_id: str) -> bool: ...


@runtime_checkable
class Lifecycle(Protocol):
    """An adapter that holds resources (connection pools): opened at start-up, closed at shutdown."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Reachable(Protocol):
    """An adapter backed by a server (a database, Redis) that can say whether the server answers."""

    async def ping(self) -> None:
        """Return when the server answered a trivial request; raise when it did not."""
        ...


@runtime_checkable
class Credentialed(Protocol):
    """A provider that may lack credentials: it names the setting that would supply them."""

    @property
    def configured(self) -> bool: ...

    @property
    def credential_setting(self) -> str: ...


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens the way a model's tokenizer would (or a documented estimate of it)."""

    def count_prompt(self, request: ChatRequest) -> int:
        """The prompt tokens of a chat request, message framing included."""
        ...

    def count_text(self, model: str, text: str) -> int:
        """The tokens of a plain text for `model`."""
        ...


@runtime_checkable
class ExactTokenCounter(Protocol):
    """A provider that can count a request's input tokens exactly (Anthropic does, by API)."""

    async def count_tokens(self, request: ChatRequest) -> int: ...


class Clock(Protocol):
    """Time, injectable so that retries and budgets are testable without sleeping."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class Directory(Protocol):
    """Teams, users, members, customers and tag budgets, as the hot path reads them (adapters cache)."""

    async def owners(
        self, team_id: str | None, user_id: str | None, customer: str | None, tags: tuple[str, ...]
    ) -> Owners:
        """What the directory knows of a request's team, user (and membership), customer and tags."""
        ...


class AttemptObserver(Protocol):
    """Told of each upstream attempt as it starts, fails or answers (tracing: one span per attempt).

    `answered` comes once the answer is whole: for a stream, when it has ended (`error`: why it ended
    early, if it did), with `outcome.usage` and `outcome.cost` filled in."""

    def attempt(
        self,
        outcome: StreamOutcome,
        provider: str,
        model: str,
        deployment: str,
        number: int,
        request: ChatRequest,
    ) -> None: ...

    def failed(self, outcome: StreamOutcome, error: BaseException) -> None: ...

    def answered(
        self, outcome: StreamOutcome, body: Mapping[str, object] | None, error: BaseException | None = None
    ) -> None: ...
