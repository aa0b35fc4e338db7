"""Domain values: requests, responses, stream chunks and token usage.

The lingua franca between the HTTP edge and providers is OpenAI's chat-completions shape, held as a
plain JSON object: the gateway must pass fields it does not know through untouched, so it never
re-models the whole body. Only what routing and pricing need is lifted into typed fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

JSONObject = dict[str, object]
ANTHROPIC_MESSAGES = "anthropic.messages"  # `NativeCall.api` of a client's Anthropic Messages request
OPENAI_RESPONSES = "openai.responses"  # `NativeCall.api` of a client's OpenAI Responses request
EMBEDDINGS = "openai.embeddings"  # `NativeCall.api` of an OpenAI embeddings request (no chat translation)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request, by class.

    `cached_tokens` and `cache_write_tokens` are parts of `prompt_tokens`; `reasoning_tokens` is part of
    `completion_tokens` (OpenAI's semantics). Adapters normalise their vendor's counts to this.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class NativeCall:
    """A client's request in a provider API's own wire format (`api`: "anthropic.messages",
    "openai.responses"), kept beside its chat-completions translation so that a deployment whose
    provider speaks that API gets it exactly as the client sent it (only `model` renamed by routing).

    `headers` are the client's headers that API defines (e.g. `anthropic-beta`, `anthropic-version`),
    names lower-cased; `query` is the client's query string without the `?` (e.g. `beta=true`); `raw`,
    when set, is the client's own bytes of `body`, sent as they are while routing leaves `model` as is.
    """

    api: str
    body: Mapping[str, object]
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""
    raw: bytes | None = None
    translatable: bool = True  # False: a provider that does not speak `api` cannot serve the call


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat request, routed by `model`; `body` is the client's OpenAI-shaped JSON object.

    `native`, when set, is the client's own request in another API's wire format. The gateway keeps it
    only for a deployment whose provider lists that API in `native_apis` (`domain.ports.NativeApis`)
    and drops it for every other, so a provider that sees `native` must send it, not `body`.
    """

    model: str
    body: Mapping[str, object]
    stream: bool = False
    include_usage: bool = False
    max_output_tokens: int | None = None
    native: NativeCall | None = None


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A provider's answer in OpenAI's `chat.completion` shape, with its usage lifted out.

    When the request was sent as its `native` call, `api` names that API and `body` is the upstream's
    answer in it (`raw`, when set, is the upstream's own bytes of `body`, to relay unchanged)."""

    body: JSONObject
    usage: Usage | None
    provider: str = ""
    api: str = ""
    raw: bytes | None = None


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 3x to build, and there is one per event
class StreamChunk:
    """One OpenAI `chat.completion.chunk`; `usage` is set on the chunk that carries usage. `raw`, when
    set, is the upstream's own JSON text of `data` (an OpenAI-shaped upstream), so the chunk can be
    relayed byte for byte instead of encoded again; whoever changes `data` must drop `raw`."""

    data: JSONObject
    usage: Usage | None = None
    raw: bytes | None = None


@dataclass(frozen=True, slots=True)
class Priced:
    """What the gateway learned about a finished request: its usage and exact cost (None = unpriced)."""

    usage: Usage | None
    cost: Decimal | None
    provider: str
    model: str
    attempts: int = 1  # upstream calls made (0: answered from the response cache)
    cache_hit: bool = False
    cost_saved: Decimal | None = None  # on a cache hit: what the cached answer cost when it was made


MAX_DEPLOYMENTS = 8


@dataclass(slots=True)
class StreamOutcome:
    """Filled in while a stream runs; complete once the stream has ended (or been cut)."""

    provider: str = ""
    usage: Usage | None = None
    cost: Decimal | None = None
    finish_reason: str | None = None
    error: str | None = None
    chunks: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    model: str = ""  # the model that answered (after aliases, deployments and fallbacks)
    attempts: int = 0
    cache_hit: bool = False
    cost_saved: Decimal | None = None
    api: str = ""  # the API of the stream's chunks: "" (chat-completions chunks) or the native call's
    # What metrics and traces report: attempts that moved to another deployment (or a fallback model)
    # and attempts that retried the same one; seconds spent waiting on upstreams (every attempt, and
    # each later chunk of a stream); `time.perf_counter()` at a stream's first and last chunk.
    failovers: int = 0
    retries: int = 0
    upstream_seconds: float = 0.0
    first_chunk_at: float = 0.0
    last_chunk_at: float = 0.0
    # The deployments attempted, in order (`provider/model`, comma-separated; a retry in place adds
    # none), the first `MAX_DEPLOYMENTS` of them: what the ledger keeps.
    deployments: str = ""
    observed: object = None  # what an `AttemptObserver` keeps for the attempt under way (its span)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API answer the gateway made and keeps (`store: true`) until `expires_at`, so that
    `previous_response_id` can continue it and `GET /v1/responses/{id}` return it.

    `input_items` are the items its request added to the conversation (the earlier responses' items
    are theirs), its output items are `body["output"]`; `body` is the response object as the client
    got it; `key_id` the virtual key that made it (None: keys are off, or the master key)."""

    id: str
    created_at: datetime
    expires_at: datetime
    key_id: str | None
    model: str
    provider: str
    body: JSONObject
    previous_id: str | None = None
    input_items: tuple[JSONObject, ...] = ()
