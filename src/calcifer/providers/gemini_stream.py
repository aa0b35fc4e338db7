"""Pure translation of Gemini's `streamGenerateContent?alt=sse` events into OpenAI stream chunks.

Each SSE event is a whole `GenerateContentResponse`; there is no `[DONE]`, `usageMetadata` is
cumulative (the last one counts) and `finishReason` arrives on the last event. Function calls arrive
whole, so each becomes one tool-call delta carrying its full `arguments`.
"""

from __future__ import annotations

from collections.abc import Mapping

from calcifer.domain.types import JSONObject, StreamChunk, Usage
from calcifer.providers.gemini_wire import (
    candidate_parts,
    completion_id,
    finish_reason,
    usage_from_gemini,
    usage_json,
)


class GeminiStream:
    """One stream's translation state: feed it each event, then take the final usage chunk."""

    def __init__(self, model: str, created: int) -> None:
        self._model = model
        self._created = created
        self._id: str | None = None
        self._started: set[int] = set()
        self._tool_calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self.usage: Usage | None = None

    @property
    def finished(self) -> bool:
        """Whether Gemini reported a `finishReason` (a stream without one was cut short)."""
        return bool(self._finished)

    def _chunk(self, choices: list[JSONObject]) -> StreamChunk:
        data: JSONObject = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        return StreamChunk(data)

    def feed(self, event: Mapping[str, object]) -> list[StreamChunk]:
        """The OpenAI chunks for one Gemini event (possibly none)."""
        if self._id is None:
            self._id = completion_id(event)
            version = event.get("modelVersion")
            if isinstance(version, str) and version:
                self._model = version
        usage = usage_from_gemini(event.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        chunks: list[StreamChunk] = []
        candidates = event.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = event.get("promptFeedback")
            if isinstance(feedback, Mapping) and feedback.get("blockReason"):
                chunks.append(self._choice(0, {"role": "assistant", "content": ""}, None))
                chunks.append(self._choice(0, {}, "content_filter"))
                self._finished.add(0)
            return chunks
        for position, candidate in enumerate(candidates):
            if not isinstance(candidate, Mapping):
                continue
            raw_index = candidate.get("index")
            index = raw_index if isinstance(raw_index, int) else position
            text, calls = candidate_parts(candidate)
            delta: JSONObject = {}
            if index not in self._started:
                self._started.add(index)
                delta = {"role": "assistant", "content": text}
            elif text:
                delta["content"] = text
            if calls:
                first = self._tool_calls.get(index, 0)
                delta["tool_calls"] = [{"index": first + n, **call} for n, call in enumerate(calls)]
                self._tool_calls[index] = first + len(calls)
            if delta:
                chunks.append(self._choice(index, delta, None))
            reason = candidate.get("finishReason")
            if reason and index not in self._finished:
                self._finished.add(index)
                mapped = finish_reason(reason, self._tool_calls.get(index, 0) > 0)
                chunks.append(self._choice(index, {}, mapped))
        return chunks

    def _choice(self, index: int, delta: JSONObject, finish: str | None) -> StreamChunk:
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def usage_chunk(self) -> StreamChunk | None:
        """The closing usage chunk (`choices: []`), when Gemini reported usage."""
        if self.usage is None:
            return None
        chunk = self._chunk([])
        chunk.data["usage"] = usage_json(self.usage)
        return StreamChunk(chunk.data, self.usage)
