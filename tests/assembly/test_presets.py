"""Vendor presets through a real gateway: enabled by their key variable, reached as `<vendor>/<model>`
and by bare name, priced from the vendor's own catalogue entry, listed once in each form."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import openai
import orjson
import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.threaded import AsgiServer

# Catalogue list prices (genai-prices), USD per 1M tokens: input, output.
GROQ_LLAMA = (Decimal("0.59"), Decimal("0.79"))
OPENROUTER_DEEPSEEK = (Decimal("0.2574"), Decimal("1.0287"))
DEEPSEEK_CHAT = (Decimal("0.135"), Decimal("0.55"))


def cost(price: tuple[Decimal, Decimal], prompt: int = 12, completion: int = 25) -> Decimal:
    return (prompt * price[0] + completion * price[1]) / 10**6  # the fake's usage: 12 in, 25 out


class Vendors:
    def __init__(self, tmp: Path) -> None:
        self.groq, self.openrouter, self.deepseek, self.ollama, self.fireworks = (
            FakeOpenAI() for _ in range(5)
        )
        env = {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "GROQ_API_KEY": "gsk-test-key",
            "GROQ_BASE_URL": self.groq.base_url,
            "OPENROUTER_API_KEY": "sk-or-test",
            "OPENROUTER_BASE_URL": self.openrouter.base_url,
            "DEEPSEEK_API_KEY": "sk-ds-test",
            "DEEPSEEK_BASE_URL": self.deepseek.base_url,
            "OLLAMA_BASE_URL": self.ollama.base_url,
            "OLLAMA_MODELS": "llama3.2",
            "FIREWORKS_API_KEY": "fw-test",
            "FIREWORKS_BASE_URL": self.fireworks.base_url,
        }
        self.gateway = AsgiServer(create_app(Settings.from_env(env)))
        self.client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0)

    def close(self) -> None:
        self.gateway.close()
        for fake in (self.groq, self.openrouter, self.deepseek, self.ollama, self.fireworks):
            fake.close()


@pytest.fixture(scope="module")
def vendors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vendors]:
    v = Vendors(tmp_path_factory.mktemp("presets"))
    yield v
    v.close()


def usage_cost(result: object) -> Decimal:
    usage = result.usage  # type: ignore[attr-defined]
    return Decimal(str(usage.model_extra["cost"]))


@pytest.mark.parametrize("model", ["groq/llama-3.3-70b-versatile", "llama-3.3-70b-versatile"])
def test_groq_by_either_name_gets_the_bare_model_and_its_own_key(vendors: Vendors, model: str) -> None:
    result = vendors.client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert vendors.groq.requests[-1]["model"] == "llama-3.3-70b-versatile"
    assert vendors.groq.headers[-1]["Authorization"] == "Bearer gsk-test-key"
    assert usage_cost(result) == cost(GROQ_LLAMA)


def test_a_streamed_answer_is_priced_at_the_vendors_price(vendors: Vendors) -> None:
    chunks = list(
        vendors.client.chat.completions.create(
            model="groq/llama-3.3-70b-versatile",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.model_extra is not None
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    assert Decimal(str(usage.model_extra["cost"])) == cost(GROQ_LLAMA, prompt, completion)


def test_one_model_at_two_vendors_is_priced_by_the_vendor_that_served_it(vendors: Vendors) -> None:
    via_router = vendors.client.chat.completions.create(
        model="openrouter/deepseek/deepseek-chat", messages=[{"role": "user", "content": "hi"}]
    )
    assert vendors.openrouter.requests[-1]["model"] == "deepseek/deepseek-chat"
    assert vendors.openrouter.headers[-1]["Authorization"] == "Bearer sk-or-test"
    assert usage_cost(via_router) == cost(OPENROUTER_DEEPSEEK)
    direct = vendors.client.chat.completions.create(
        model="deepseek/deepseek-chat", messages=[{"role": "user", "content": "hi"}]
    )
    assert vendors.deepseek.requests[-1]["model"] == "deepseek-chat"
    assert usage_cost(direct) == cost(DEEPSEEK_CHAT)


def test_a_local_server_takes_any_model_keyless_and_unpriced(vendors: Vendors) -> None:
    for model in ("ollama/qwen3:0.6b", "llama3.2"):
        result = vendors.client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        assert vendors.ollama.requests[-1]["model"] == model.removeprefix("ollama/")
        assert "Authorization" not in vendors.ollama.headers[-1]
        assert result.usage is not None and result.usage.model_extra == {"cost": None}


def test_a_model_the_price_list_does_not_know_reaches_the_vendor_unpriced(vendors: Vendors) -> None:
    result = vendors.client.chat.completions.create(
        model="groq/brand-new-model", messages=[{"role": "user", "content": "x"}]
    )
    assert vendors.groq.requests[-1]["model"] == "brand-new-model"
    assert result.usage is not None and result.usage.model_extra == {"cost": None}
    with pytest.raises(openai.NotFoundError) as caught:  # a bare unknown name is still unknown
        vendors.client.chat.completions.create(
            model="brand-new-model", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_the_model_list_names_each_form_once_with_its_vendors_price(vendors: Vendors) -> None:
    raw = vendors.client.models.with_raw_response.list()
    data = orjson.loads(raw.http_response.content)["data"]
    ids = [entry["id"] for entry in data]
    assert len(ids) == len(set(ids))
    owners = {entry["id"]: entry["owned_by"] for entry in data}
    assert owners["groq/llama-3.3-70b-versatile"] == owners["llama-3.3-70b-versatile"] == "groq"
    assert owners["openrouter/deepseek/deepseek-chat"] == "openrouter"
    assert owners["deepseek/deepseek-chat"] == owners["deepseek-chat"] == "deepseek"
    assert owners["openai/gpt-4o"] == owners["gpt-4o"] == "openai"
    assert owners["llama3.2"] == owners["ollama/llama3.2"] == "ollama"
    assert "deepseek/deepseek-chat" not in {e["id"] for e in data if e["owned_by"] == "openrouter"}
    rates = {entry["id"]: (entry["pricing"] or {}).get("input_per_1m") for entry in data}
    assert rates["openrouter/deepseek/deepseek-chat"] == "0.2574"
    assert rates["deepseek/deepseek-chat"] == rates["deepseek-chat"] == "0.135"
    assert rates["ollama/llama3.2"] is None


def test_fireworks_gets_its_account_path_before_a_bare_catalogue_id(vendors: Vendors) -> None:
    vendors.client.chat.completions.create(
        model="fireworks/deepseek-v3-0324", messages=[{"role": "user", "content": "hi"}]
    )
    assert vendors.fireworks.requests[-1]["model"] == "accounts/fireworks/models/deepseek-v3-0324"
    vendors.client.chat.completions.create(
        model="fireworks/accounts/me/models/tuned", messages=[{"role": "user", "content": "hi"}]
    )
    assert vendors.fireworks.requests[-1]["model"] == "accounts/me/models/tuned"
