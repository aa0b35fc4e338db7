"""Test doubles of the domain's own ports: a scripted `Provider` and a `Clock` that never sleeps."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from calcifer.domain.types import ChatRequest, ChatResponse, StreamChunk, Usage

# One scripted answer to `complete`: a response to return or an exception to raise.
Step = ChatResponse | Exception
# One scripted stream: the chunks it yields, in order; an exception in the list is raised at that point.
StreamScript = Sequence[StreamChunk | Exception]


@dataclass
class FakeClock:
    """Time that only moves when a test (or a `sleep`) moves it; `sleep` records its delay."""

    time: float = 1_750_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


class ScriptedProvider:
    """An in-memory `Provider` that answers each call with the next scripted step.

    `complete` pops the next `Step`; `stream` pops the next `StreamScript`. Every request is recorded,
    and `closed` counts the streams whose generator was closed (finished, failed or cancelled).
    """

    def __init__(
        self,
        name: str = "scripted",
        models: Iterable[str] = ("model-a",),
        *,
        steps: Iterable[Step] = (),
        streams: Iterable[StreamScript] = (),
    ) -> None:
        self.name = name
        self.models = frozenset(models)
        self.steps = list(steps)
        self.streams = list(streams)
        self.requests: list[ChatRequest] = []
        self.opened = 0
        self.closed = 0

    def supports(self, model: str) -> bool:
        return model in self.models

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamChunk]:
        self.requests.append(request)
        script = self.streams.pop(0)
        self.opened += 1
        try:
            for item in script:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1


class CredentialedProvider(ScriptedProvider):
    """A scripted provider that may lack credentials (the `Credentialed` port)."""

    def __init__(
        self,
        name: str = "keyed",
        models: Iterable[str] = ("model-k",),
        *,
        configured: bool,
        setting: str = "FAKE_API_KEY",
        steps: Iterable[Step] = (),
    ) -> None:
        super().__init__(name, models, steps=steps)
        self._configured = configured
        self._setting = setting

    @property
    def configured(self) -> bool:
        return self._configured

    @property
    def credential_setting(self) -> str:
        return self._setting


def response(content: str = "hi", usage: Usage | None = None, provider: str = "") -> ChatResponse:
    """A minimal OpenAI `chat.completion` answer."""
    body: dict[str, object] = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    return ChatResponse(body=body, usage=usage, provider=provider)


def chunk(content: str = "", usage: Usage | None = None) -> StreamChunk:
    """A minimal OpenAI `chat.completion.chunk`; with `usage`, the final usage chunk."""
    if usage is not None:
        return StreamChunk({"object": "chat.completion.chunk", "choices": [], "usage": {}}, usage)
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return StreamChunk({"object": "chat.completion.chunk", "choices": [choice]})
