"""`GET /admin/models`: deployments, prices with their source, unpriced models, cooldowns."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2 as httpx
import orjson
from tests.domain.doubles import ScriptedProvider
from tests.fakes.openai_server import Script, error_body
from tests.fakes.threaded import AsgiServer
from tests.routing.conftest import Start, routed

from calcifer.app import create_app
from calcifer.config.settings import Settings
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.types import ChatResponse, Usage

__all__ = ["routed"]
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def models(base: str) -> dict[str, Any]:
    answer = httpx.get(base + "/admin/models", timeout=10)
    assert answer.status_code == 200, answer.text
    return {m["id"]: m for m in orjson.loads(answer.content)["data"]}


def test_models_show_deployments_prices_and_cooldowns(routed: Start) -> None:
    setup = routed()
    before = models(setup.gateway.url)
    gpt = before["gpt-4o"]
    assert gpt["strategy"] == "cheapest" and gpt["context_fallbacks"] == ["big"]
    assert [(d["provider"], d["model"], d["cooling_down"]) for d in gpt["deployments"]] == [
        ("primary", "gpt-4o", False),
        ("backup", "gpt-4o", False),
    ]
    assert (
        gpt["priced"] and gpt["pricing"]["input_per_1m"] == "2.5" and gpt["pricing"]["output_per_1m"] == "10"
    )
    assert gpt["price_source"].startswith("catalogue ")
    echo = before["echo4"]
    assert echo["price_source"] == "built in" and echo["strategy"] is None
    assert echo["deployments"] == [{"provider": "echo", "model": "echo4", "cooling_down": False}]
    setup.primary.script(
        Script(status=429, body=error_body("Rate limit", "rate_limit_error"), headers={"Retry-After": "20"})
    )
    assert httpx.post(setup.url, json=BODY, timeout=10).status_code == 200
    cooling = {d["provider"]: d for d in models(setup.gateway.url)["gpt-4o"]["deployments"]}
    assert cooling["primary"]["cooling_down"] and 15 <= cooling["primary"]["cooldown_seconds_left"] <= 20
    assert not cooling["backup"]["cooling_down"] and cooling["backup"]["cooldown_seconds_left"] is None


def test_a_config_price_and_an_unpriced_model_say_so(tmp_path: Any, start_gateway: Any) -> None:
    config = tmp_path / "calcifer.yaml"
    config.write_text(
        "providers:\n"
        "  - name: local\n"
        "    base_url: http://127.0.0.1:9/v1\n"
        "    models: [llama-free, '<img src=x onerror=alert(1)>']\n"
        "prices:\n"
        "  llama-free: {input: '0.1', output: '0.2'}\n"
    )
    gateway = start_gateway(
        {"CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "CALCIFER_CONFIG": str(config)}
    )
    found = models(gateway.url)
    assert found["llama-free"]["price_source"] == "config file or plugin"
    assert found["llama-free"]["pricing"]["input_per_1m"] == "0.1"
    hostile = found["<img src=x onerror=alert(1)>"]
    assert hostile["priced"] is False and hostile["pricing"] is None and hostile["price_source"] is None


def test_a_model_two_vendors_price_differently_shows_the_price_its_vendor_bills() -> None:
    list_price = PricingConfig.per_million(input="0.27", output="1.1")  # the model maker's own price
    router_price = PricingConfig.per_million(input="0.5", output="2")  # what the router bills for it
    pricing = PricingRegistry()
    pricing.register("deepseek-chat", list_price)
    pricing.register("router/deepseek-chat", router_price, source="config file or plugin")
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}
    answer = ChatResponse(
        {"id": "c1", "object": "chat.completion", "model": "deepseek-chat", "choices": [], "usage": usage},
        Usage(1000, 1000),
    )
    router = ScriptedProvider("router", ["deepseek-chat"], steps=[answer])
    server = AsgiServer(create_app(Settings(), providers=[router], pricing=pricing))
    try:
        shown = models(server.url)["deepseek-chat"]
        billed = httpx.post(
            server.url + "/v1/chat/completions",
            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
    finally:
        server.close()
    assert shown["owned_by"] == "router" and shown["price_source"] == "config file or plugin"
    assert (shown["pricing"]["input_per_1m"], shown["pricing"]["output_per_1m"]) == ("0.5", "2")
    assert billed.status_code == 200, billed.text
    assert Decimal(str(orjson.loads(billed.content)["usage"]["cost"])) == Decimal("0.0025")
