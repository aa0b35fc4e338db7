"""The exact-match response cache: when a request may be answered from it, under what key, for how long.

A model opts in by configuration (`CacheRule`); a request can opt in, refresh or opt out by header
(`CacheDirective`, parsed at the HTTP edge). The key is a digest of the requested model, whether the
answer is streamed, and the request body without the fields that do not change the answer; a client's
native call (`NativeCall`) is keyed by its API, its own body and its headers, so an answer is only ever
served to a request of the API it was asked in. A hit costs nothing; the cost the answer had when it
was made is kept with it and reported as saved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from calcifer.domain.types import JSONObject, NativeCall, Usage

# Request fields that tag or shape the delivery but not the answer itself.
_NOT_IN_KEY = frozenset({"stream", "stream_options", "user", "metadata"})

CacheMode = Literal["on", "off", "refresh"]


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    """One answer as cached: a whole body, or a stream's chunks (each with the usage it carried); `api`
    is the API they are in ("": chat completions; else the native call's, as `ChatResponse.api`)."""

    model: str
    provider: str
    usage: Usage | None
    cost: Decimal | None
    body: JSONObject | None = None
    chunks: tuple[tuple[JSONObject, Usage | None], ...] = ()
    api: str = ""


@runtime_checkable
class ResponseCache(Protocol):
    """Where cached answers are kept. A store that fails behaves as a miss (and drops the write)."""

    async def get(self, key: str) -> CachedAnswer | None: ...

    async def put(self, key: str, answer: CachedAnswer, ttl: float) -> None: ...


@dataclass(frozen=True, slots=True)
class CacheRule:
    """A model's configured caching: on or off, and the time to live of what it caches."""

    enabled: bool = False
    ttl: float = 300.0


@dataclass(frozen=True, slots=True)
class CacheDirective:
    """What a request's headers ask: `on` (read and write), `refresh` (write only), `off` (neither);
    `ttl` from `Cache-Control: max-age=N`. None fields defer to the model's rule."""

    mode: CacheMode | None = None
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class CachePlan:
    key: str
    read: bool
    write: bool
    ttl: float


def plan(
    rule: CacheRule | None,
    directive: CacheDirective | None,
    model: str,
    body: Mapping[str, object],
    stream: bool,
    native: NativeCall | None = None,
) -> CachePlan | None:
    """Whether and how this request uses the cache (None: not at all). The key is made only when used."""
    mode = directive.mode if directive is not None else None
    if mode is None:
        enabled = rule is not None and rule.enabled
        mode = "on" if enabled or (directive is not None and directive.ttl is not None) else "off"
    if mode == "off":
        return None
    ttl = directive.ttl if directive is not None and directive.ttl is not None else None
    if ttl is None:
        ttl = rule.ttl if rule is not None else CacheRule().ttl
    if ttl <= 0:
        return None
    return CachePlan(cache_key(model, body, stream, native), mode == "on", True, ttl)


def cache_key(model: str, body: Mapping[str, object], stream: bool, native: NativeCall | None = None) -> str:
    """The key of a request: of its chat body, or of its native call (its API, body, headers, query)."""
    source = body if native is None else native.body
    kept: object = {k: v for k, v in source.items() if k not in _NOT_IN_KEY} | {"model": model}
    if native is not None:
        kept = [native.api, kept, sorted(native.headers), native.query]
    digest = hashlib.sha256(canonical_json(kept).encode("utf-8")).hexdigest()
    api = "" if native is None else native.api + ":"
    return ("s:" if stream else "c:") + api + digest


def canonical_json(value: object) -> str:
    """`value` as compact JSON with sorted keys, at any depth: `json.dumps` (C, fast) for what its
    recursion reaches, else the same text built with an explicit stack (a body a thousand levels deep)."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except RecursionError:
        return _canonical_deep(value)


class _Text(str):
    """Punctuation and encoded keys, written as they are (not encoded as a JSON string)."""


def _canonical_deep(value: object) -> str:
    out: list[str] = []
    work: list[object] = [value]
    while work:
        item = work.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, dict):
            pending: list[object] = []
            for i, key in enumerate(sorted(item)):
                pending += [_Text(("," if i else "") + _scalar(key) + ":"), item[key]]
            work += [_Text("}"), *reversed(pending), _Text("{")]
        elif isinstance(item, list | tuple):
            pending = []
            for i, element in enumerate(item):
                pending += [_Text(",")] if i else []
                pending.append(element)
            work += [_Text("]"), *reversed(pending), _Text("[")]
        else:
            out.append(_scalar(item))
    return "".join(out)


def _scalar(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def copy_json(value: object) -> object:
    """A deep copy of a JSON value (dicts, lists, scalars): callers mutate what they are given."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def copy_object(value: JSONObject) -> JSONObject:
    return {k: copy_json(v) for k, v in value.items()}
