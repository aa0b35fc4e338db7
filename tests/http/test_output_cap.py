"""A translated request's output limit fits the target model (Claude Code asks 32000 of any model);
a direct chat-completions request goes up as the client sent it, and OpenAI's refusal reaches it.

The gateway runs on its production assembly (the catalogue's maxima: gpt-4o 16384 output tokens,
gemini-2.0-flash 8192) in front of loopback fakes of OpenAI and Gemini; the OpenAI fake refuses a limit
above the model's maximum as OpenAI does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AiohttpServer, AsgiServer

from calcifer.app import create_app
from calcifer.config.settings import Settings

ASK = 32000
MESSAGES = {"max_tokens": ASK, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Rig:
    openai: FakeOpenAI
    gemini: GeminiFake
    gateway: AsgiServer

    def post(self, path: str, body: dict[str, object]) -> httpx.Response:
        headers = {"anthropic-version": "2023-06-01"} if path == "/v1/messages" else {}
        return httpx.post(self.gateway.url + path, json=body, headers=headers, timeout=10)


@pytest.fixture
def rig() -> Iterator[Rig]:
    openai, gemini = FakeOpenAI(), GeminiFake()
    gemini_server = AiohttpServer(gemini.app())
    env = {
        "OPENAI_API_KEY": "sk-openai-test",
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "GEMINI_API_KEY": gemini.api_key,
        "GEMINI_BASE_URL": gemini_server.url + "/v1beta",
    }
    gateway = AsgiServer(create_app(Settings.from_env(env)))
    yield Rig(openai, gemini, gateway)
    gateway.close()
    gemini_server.close()
    openai.close()


def test_messages_to_gpt_4o_reach_openai_with_the_models_maximum(rig: Rig) -> None:
    answer = rig.post("/v1/messages", {"model": "gpt-4o", **MESSAGES})
    assert answer.status_code == 200, answer.text
    assert rig.openai.requests[-1]["max_completion_tokens"] == 16384
    assert answer.json()["type"] == "message"


def test_a_limit_within_the_maximum_is_sent_as_asked(rig: Rig) -> None:
    answer = rig.post("/v1/messages", {"model": "gpt-4o", **MESSAGES, "max_tokens": 1000})
    assert answer.status_code == 200, answer.text
    assert rig.openai.requests[-1]["max_completion_tokens"] == 1000


def test_a_direct_chat_request_is_not_capped_and_openais_refusal_reaches_the_client(rig: Rig) -> None:
    body = {"model": "gpt-4o", "max_tokens": ASK, "messages": [{"role": "user", "content": "hi"}]}
    answer = rig.post("/v1/chat/completions", body)
    assert rig.openai.requests[-1]["max_tokens"] == ASK
    assert answer.status_code == 400
    assert "supports at most 16384 completion tokens" in answer.json()["error"]["message"]


def test_messages_to_gemini_reach_it_with_the_models_maximum(rig: Rig) -> None:
    answer = rig.post("/v1/messages", {"model": "gemini-2.0-flash", **MESSAGES})
    assert answer.status_code == 200, answer.text
    assert rig.gemini.received[-1].body["generationConfig"]["maxOutputTokens"] == 8192


def test_a_translated_responses_request_is_capped_too(rig: Rig) -> None:
    body = {"model": "gemini-2.0-flash", "input": "hi", "max_output_tokens": ASK, "store": False}
    answer = rig.post("/v1/responses", body)
    assert answer.status_code == 200, answer.text
    assert rig.gemini.received[-1].body["generationConfig"]["maxOutputTokens"] == 8192
