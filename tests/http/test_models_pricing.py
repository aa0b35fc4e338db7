"""`/v1/models` entries carry the price in force, exactly, and stay valid OpenAI `Model` objects."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from tests.domain.doubles import ScriptedProvider
from tests.http.openapi import SPEC, errors

from calcifer.domain.pricing import PriceTier, PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.http.routes import models_body

TIERED = PricingConfig.per_million(
    "1.25",
    "10",
    cached_input="0.125",
    tiers=(PriceTier(200_000, PricingConfig.per_million("2.5", "15", cached_input="0.25")),),
)
CLAUDE = PricingConfig.per_million("3", "15", cached_input="0.30", cache_write="3.75", cache_write_1h="6")


def body(at: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> dict[str, dict[str, object]]:
    pricing = PricingRegistry("catalogue-v1")
    pricing.register("tiered", TIERED)
    pricing.register("claude", CLAUDE)
    pricing.register("dated", PricingConfig.per_million("10", "40"))
    pricing.register("dated", PricingConfig.per_million("2", "8"), since=datetime(2025, 6, 10, tzinfo=UTC))
    provider = ScriptedProvider("p", ["tiered", "claude", "dated", "free-for-all"])
    registry = ProviderRegistry([provider], aliases={"fast": "claude"})
    data = orjson.loads(models_body(registry, 1, pricing, at))["data"]
    return {entry["id"]: entry for entry in data}


def test_each_entry_carries_its_rates_per_1m_as_exact_strings() -> None:
    claude = body()["claude"]["pricing"]
    assert claude == {
        "input_per_1m": "3",
        "cached_input_per_1m": "0.3",
        "cache_write_per_1m": "3.75",
        "cache_write_1h_per_1m": "6",
        "output_per_1m": "15",
        "reasoning_per_1m": "15",
        "tiers": [],
        "currency": "USD",
        "catalogue": "catalogue-v1",
    }


def test_tiers_and_borrowed_rates() -> None:
    tiered = body()["tiered"]["pricing"]
    assert isinstance(tiered, dict)
    assert tiered["cache_write_per_1m"] == "1.25"  # no write rate: charged as input
    assert tiered["tiers"] == [
        {
            "prompt_tokens_above": 200_000,
            "input_per_1m": "2.5",
            "cached_input_per_1m": "0.25",
            "cache_write_per_1m": "2.5",
            "cache_write_1h_per_1m": "2.5",
            "output_per_1m": "15",
            "reasoning_per_1m": "15",
        }
    ]


def test_the_price_in_force_when_built_an_alias_priced_as_its_target_and_unpriced_as_null() -> None:
    entries = body()
    assert entries["dated"]["pricing"]["input_per_1m"] == "2"  # type: ignore[index]
    old = body(datetime(2025, 5, 1, tzinfo=UTC))
    assert old["dated"]["pricing"]["input_per_1m"] == "10"  # type: ignore[index]
    assert entries["fast"]["pricing"] == entries["claude"]["pricing"]
    assert entries["free-for-all"]["pricing"] is None


def test_without_pricing_the_list_is_unchanged() -> None:
    registry = ProviderRegistry([ScriptedProvider("p", ["m"])])
    assert orjson.loads(models_body(registry, 1)) == {
        "object": "list",
        "data": [
            {"id": "m", "object": "model", "created": 1, "owned_by": "p"},
            {"id": "p/m", "object": "model", "created": 1, "owned_by": "p"},
        ],
    }


@pytest.mark.skipif(not SPEC.exists(), reason=f"OpenAI spec not found at {SPEC}")
def test_entries_with_pricing_match_openais_model_list_schema() -> None:
    listing = {"object": "list", "data": list(body().values())}
    assert errors("ListModelsResponse", listing) == []
