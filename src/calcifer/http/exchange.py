"""One chat request through the gateway: admit it, call it, price it and account for it exactly once.

Every chat-shaped endpoint (OpenAI chat, the original API, Anthropic messages) goes through here, so
keys, limits, budgets, the ledger and the access log behave the same on all of them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from typing import Any

from starlette.requests import Request

from calcifer.domain.cache import CacheDirective, CacheMode
from calcifer.domain.errors import GatewayError
from calcifer.domain.gateway import GatewayService
from calcifer.domain.limits import RateDecision
from calcifer.domain.spending import OPEN, Admission, SpendControl, prompt_bound
from calcifer.domain.types import (
    ANTHROPIC_MESSAGES,
    OPENAI_RESPONSES,
    ChatRequest,
    ChatResponse,
    JSONObject,
    Priced,
    StreamChunk,
    StreamOutcome,
)
from calcifer.http.auth import IDENTITY_KEY, Identity
from calcifer.http.errors import status_of
from calcifer.http.headers import echoed
from calcifer.http.middleware import FACTS_KEY, RequestFacts
from calcifer.http.wire import json_object, read_body

_SECONDS = re.compile(r"[0-9]+")
_MAX_AGE = 2**31  # RFC 9111 §1.2.2: a larger delta-seconds is taken as 2^31


class StreamCut(GatewayError):
    """A stream reached what its budget reservation allows and was cut."""

    kind = "budget_exceeded"
    code = "budget_exceeded"
    http_status = 429


async def read_json(request: Request) -> tuple[JSONObject, int]:
    """The request's JSON object body and its size in bytes."""
    body, raw = await read_raw_json(request)
    return body, len(raw)


async def read_raw_json(request: Request) -> tuple[JSONObject, bytes]:
    """The request's JSON object body and its bytes as received."""
    settings = request.app.state.settings
    raw = await read_body(request, settings.max_body_bytes, settings.read_timeout)
    return json_object(raw), raw


class Exchange:
    # A stream being relayed (the relay and the upstream chunks under it) until `aclose()`.
    _relaying: tuple[AsyncIterator[StreamChunk], AsyncIterator[StreamChunk]] | None = None
    _ended = False  # the stream's end (settled, facts filled in) has run

    def __init__(self, request: Request, chat: ChatRequest, body_size: int) -> None:
        state = request.app.state
        self.gateway: GatewayService = state.gateway
        self.spend: SpendControl | None = getattr(state, "spend", None)
        self.chat = chat
        self.body_size = body_size
        self.identity: Identity | None = request.scope.get(IDENTITY_KEY)
        self.facts: RequestFacts = request.scope[FACTS_KEY]
        self.admission: Admission = OPEN
        self.outcome = StreamOutcome()
        self.cache = cache_directive(
            request.headers.get("x-calcifer-cache"), request.headers.get("cache-control")
        )
        facts = self.facts
        facts.outcome = self.outcome
        facts.model = chat.model
        facts.stream = chat.stream
        facts.user, facts.team = _owners(chat.body, self.identity, request.headers.get("x-calcifer-user"))
        facts.customer = customer_of(chat.body, request.headers.get("x-calcifer-customer"))
        facts.tags = tags_of(chat.body, request.headers.get("x-calcifer-tags"), self.identity)
        if self.identity is not None and self.identity.key is not None:
            facts.key_id = self.identity.key.id

    async def _admit(self) -> None:
        key = self.identity.key if self.identity is not None else None
        if self.spend is None or (key is None and self.facts.customer is None and not self.facts.tags):
            return
        messages = self.chat.body.get("messages")
        count = len(messages) if isinstance(messages, list) else 0
        images = _image_parts(messages) if isinstance(messages, list) else 0
        bound = prompt_bound(self.body_size, count, images)
        try:
            self.admission = await self.spend.admit(
                key, self.chat, bound, customer=self.facts.customer, tags=self.facts.tags
            )
        except GatewayError as error:
            self.facts.refusal = error.refusal
            raise

    async def _close(self, usage: Any, cost: Any, delivered: bool) -> None:
        if self.spend is not None and self.admission is not OPEN:
            await self.spend.close(self.admission, usage, cost, delivered=delivered)

    def _priced(self, priced: Priced | StreamOutcome) -> None:
        facts = self.facts
        facts.provider = priced.provider
        facts.usage = priced.usage
        facts.cost = priced.cost
        facts.cache_hit = priced.cache_hit
        facts.cost_saved = priced.cost_saved

    async def complete(self) -> tuple[ChatResponse, Priced]:
        await self._admit()
        try:
            response, priced = await self.gateway.complete(self.chat, cache=self.cache, outcome=self.outcome)
        except BaseException as error:
            self.facts.provider = self.outcome.provider
            await self._close(None, None, delivered=False)
            if isinstance(error, GatewayError):
                error.calcifer_headers = self.headers()  # type: ignore[attr-defined]
            raise
        self._priced(priced)
        await self._close(priced.usage, priced.cost, delivered=True)
        return response, priced

    async def stream(self) -> tuple[StreamChunk | None, AsyncIterator[StreamChunk]]:
        """Open the stream and wait for its first chunk (errors before it are plain HTTP errors)."""
        await self._admit()
        chunks = self.gateway.stream(self.chat, self.outcome, cache=self.cache)
        try:
            first = await anext(chunks, None)
        except BaseException as error:
            await chunks.aclose()  # type: ignore[attr-defined]
            self.facts.provider = self.outcome.provider
            await self._close(None, None, delivered=False)
            if isinstance(error, GatewayError):
                error.calcifer_headers = self.headers()  # type: ignore[attr-defined]
            raise
        relay = self._relay(first, chunks)
        self._relaying = relay, chunks
        return first, relay

    async def aclose(self) -> None:
        """End a stream whose consumer stopped early (the client went away) now, rather than whenever the
        garbage collector finalises it: its budget is settled and its facts (499, cut short, what was
        delivered and its cost) are filled in before the request's ledger row is written. Idempotent."""
        if self._relaying is None:
            return
        relay, chunks = self._relaying
        self._relaying = None
        await relay.aclose()  # type: ignore[attr-defined]
        if not self._ended:  # the relay never started: nothing of the stream reached the client
            self.facts.status = 499
            await self._end(chunks, finished=False)

    async def _relay(
        self, first: StreamChunk | None, chunks: AsyncIterator[StreamChunk]
    ) -> AsyncIterator[StreamChunk]:
        delivered = 0
        finished = False
        capped = self.admission.max_output_tokens is not None  # else nothing to count per chunk
        carries_output = _OUTPUT.get(self.outcome.api, _carries_output)
        try:
            chunk = first
            while chunk is not None:
                if capped and carries_output(chunk):
                    # `delivered` output chunks so far (each at least a token): one more must fit.
                    if not self.admission.may_deliver(delivered):
                        raise StreamCut("The stream reached this key's remaining budget and was cut.")
                    delivered += 1
                yield chunk
                chunk = await anext(chunks, None)
            finished = True
        except (asyncio.CancelledError, GeneratorExit):  # the client went away
            self.facts.status = 499
            raise
        except GatewayError as error:
            self.facts.status = status_of(error)
            self.facts.error = error
            raise
        finally:
            await self._end(chunks, finished)

    async def _end(self, chunks: AsyncIterator[StreamChunk], finished: bool) -> None:
        self._ended = True
        await chunks.aclose()  # type: ignore[attr-defined]
        self.facts.cut_short = not finished
        self._priced(self.outcome)
        await self._close(self.outcome.usage, self.outcome.cost, delivered=self.outcome.chunks > 0)

    def headers(self, priced: Priced | None = None) -> dict[str, str]:
        """`x-calcifer-*` (who answered, after how many upstream attempts, at what cost when known, and
        whether from the cache) and, for keys with rate limits, `x-ratelimit-*` headers."""
        known: Priced | StreamOutcome = priced if priced is not None else self.outcome
        model = echoed((priced.model if priced is not None else self.outcome.model) or self.chat.model)
        headers = {"x-calcifer-attempts": str(known.attempts)}
        if model is not None:  # the name a client asked for, left out when no header can carry it
            headers["x-calcifer-model"] = model
        if known.provider:  # none before routing (an unknown model, a refused key)
            headers["x-calcifer-provider"] = known.provider
        cost = priced.cost if priced is not None else (Decimal(0) if known.cache_hit else None)
        if cost is not None:
            headers["x-calcifer-cost"] = format(cost, "f")
        if known.cache_hit:
            headers["x-calcifer-cache"] = "hit"
            if known.cost_saved is not None:
                headers["x-calcifer-cost-saved"] = format(known.cost_saved, "f")
        decision = self.admission.decision
        if decision is not None:
            _rate_headers(headers, decision)
        return headers


def _rate_headers(headers: dict[str, str], decision: RateDecision) -> None:
    """The `x-ratelimit-*` headers of each dimension that has a limit. Written out, not looped over
    with built names: every rate-limited answer carries them."""
    reset = ""
    if decision.limit_requests is not None and decision.remaining_requests is not None:
        reset = f"{max(decision.reset_requests, 0):.3f}s"
        headers["x-ratelimit-limit-requests"] = str(decision.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(decision.remaining_requests)
        headers["x-ratelimit-reset-requests"] = reset
    if decision.limit_tokens is not None and decision.remaining_tokens is not None:
        if not reset or decision.reset_tokens != decision.reset_requests:  # one window: the same reset
            reset = f"{max(decision.reset_tokens, 0):.3f}s"
        headers["x-ratelimit-limit-tokens"] = str(decision.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(decision.remaining_tokens)
        headers["x-ratelimit-reset-tokens"] = reset


def cache_directive(calcifer: str | None, cache_control: str | None) -> CacheDirective | None:
    """What a request's headers ask of the response cache: `x-calcifer-cache: on|off|refresh` and
    `Cache-Control: max-age=N` (cache for N seconds, N ASCII digits, at most 2^31 as RFC 9111 caps
    it), `no-cache` (refresh), `no-store` (off)."""
    if calcifer is None and cache_control is None:
        return None
    mode: CacheMode | None = None
    ttl: float | None = None
    for part in (cache_control or "").lower().split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-store":
            mode = "off"
        elif name == "no-cache" and mode is None:
            mode = "refresh"
        elif name in ("max-age", "s-maxage") and _SECONDS.fullmatch(digits := value.strip()):
            ttl = float(_MAX_AGE if len(digits) > 10 else min(int(digits), _MAX_AGE))
            if ttl == 0:
                mode = mode or "refresh"
    word = (calcifer or "").strip().lower()
    if word in ("on", "true", "1", "yes"):
        mode = "on"
    elif word in ("off", "false", "0", "no"):
        mode = "off"
    elif word == "refresh":
        mode = "refresh"
    if mode is None and ttl is None:
        return None
    return CacheDirective(mode, ttl if ttl else None)


def _owners(
    body: Mapping[str, object], identity: Identity | None, header: str | None = None
) -> tuple[str | None, str | None]:
    """The user and team a request is spent for: its key's user and team, else (the user) the
    `x-calcifer-user` header that coding agents set, else the request's `metadata.user`/`metadata.team`,
    else its key's metadata. The header only attributes spend: budgets follow the key's own user."""
    metadata = body.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    key = identity.key if identity is not None else None
    key_meta = key.metadata if key is not None else {}
    claimed = header.strip() if header else None
    user = (key.user_id if key is not None else None) or claimed or meta.get("user") or key_meta.get("user")
    team = (key.team_id if key is not None else None) or meta.get("team") or key_meta.get("team")
    return _text(user), _text(team)


def customer_of(body: Mapping[str, object], header: str | None) -> str | None:
    """The end customer a request serves: `x-calcifer-customer`, else OpenAI's `user` field, else
    Anthropic's `metadata.user_id`."""
    if header and header.strip():
        return _text(header.strip())
    metadata = body.get("metadata")
    anthropic = metadata.get("user_id") if isinstance(metadata, dict) else None
    return _text(body.get("user") or anthropic)


def tags_of(body: Mapping[str, object], header: str | None, identity: Identity | None) -> tuple[str, ...]:
    """A request's tags, deduplicated in order: `x-calcifer-tags` (comma-separated), `metadata.tags`
    (a list or a comma-separated string), and the key's `metadata.tags`."""
    found: list[str] = []
    metadata = body.get("metadata")
    key = identity.key if identity is not None else None
    for source in (
        header,
        metadata.get("tags") if isinstance(metadata, dict) else None,
        key.metadata.get("tags") if key is not None else None,
    ):
        parts = source.split(",") if isinstance(source, str) else source if isinstance(source, list) else ()
        for part in parts:
            tag = _text(part.strip() if isinstance(part, str) else None)
            if tag is not None and tag not in found and len(found) < _MAX_TAGS:
                found.append(tag)
    return tuple(found)


_MAX_TAGS = 16
_MAX_NAME = 1024


def _text(value: object) -> str | None:
    """A non-empty identifier (cut at 1024 characters), or None."""
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
        return str(value)[:_MAX_NAME]
    return None


def _carries_output(chunk: StreamChunk) -> bool:
    """Whether a chunk delivers output tokens: a delta with more than a role (an opening role chunk, a
    closing `finish_reason` chunk and a usage chunk deliver none)."""
    choices = chunk.data.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and any(value for name, value in delta.items() if name != "role"):
            return True
    return False


# How to tell a chunk that delivers output in each native API's stream (`StreamOutcome.api`).
def _responses_output(chunk: StreamChunk) -> bool:
    """A Responses API event that delivers output: any `*.delta` event with a non-empty delta."""
    kind = chunk.data.get("type")
    return isinstance(kind, str) and kind.endswith(".delta") and bool(chunk.data.get("delta"))


_OUTPUT: dict[str, Callable[[StreamChunk], bool]] = {
    ANTHROPIC_MESSAGES: lambda chunk: chunk.data.get("type") == "content_block_delta",
    OPENAI_RESPONSES: _responses_output,
}


def _image_parts(messages: list[object]) -> int:
    count = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") != "text")
    return count
