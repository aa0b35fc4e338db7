"""Vendor presets: each enabled by its usual variable alone, its base URL overridable."""

from __future__ import annotations

import pytest

from calcifer.config.presets import PRESETS, enabled_presets
from calcifer.config.settings import ConfigError


def test_nothing_is_enabled_by_an_empty_environment() -> None:
    assert enabled_presets({}) == []
    assert enabled_presets({"GROQ_API_KEY": "  ", "OLLAMA_API_KEY": "k"}) == []


def test_a_key_variable_alone_enables_a_hosted_vendor_at_its_default_url() -> None:
    (groq,) = enabled_presets({"GROQ_API_KEY": "gsk-1"})
    assert (groq.preset.name, groq.api_key, groq.base_url) == (
        "groq",
        "gsk-1",
        "https://api.groq.com/openai/v1",
    )
    assert groq.credential_setting == "GROQ_API_KEY"
    assert (groq.timeout, groq.max_retries) == (60.0, 3)


def test_base_url_timeout_and_retries_are_read_per_vendor() -> None:
    env = {
        "XAI_API_KEY": "xai-1",
        "XAI_BASE_URL": "http://127.0.0.1:9/v1/",
        "XAI_TIMEOUT": "5s",
        "XAI_MAX_RETRIES": "0",
    }
    (xai,) = enabled_presets(env)
    assert (xai.base_url, xai.timeout, xai.max_retries) == ("http://127.0.0.1:9/v1", 5.0, 0)
    with pytest.raises(ConfigError, match="XAI_BASE_URL"):
        enabled_presets({"XAI_API_KEY": "k", "XAI_BASE_URL": "api.x.ai"})


def test_alternative_key_names_and_the_fixed_order() -> None:
    env = {"PERPLEXITYAI_API_KEY": "pplx", "TOGETHERAI_API_KEY": "tog", "MISTRAL_API_KEY": "m"}
    found = enabled_presets(env)
    assert [p.preset.name for p in found] == ["mistral", "together", "perplexity"]
    assert [p.api_key for p in found] == ["m", "tog", "pplx"]


def test_local_servers_need_their_base_url_and_no_key() -> None:
    (ollama,) = enabled_presets(
        {"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1", "OLLAMA_MODELS": "llama3.2, qwen3 ,,"}
    )
    assert ollama.api_key is None
    assert ollama.preset.local
    assert ollama.models == {"llama3.2", "qwen3"}
    names = [
        p.preset.name
        for p in enabled_presets({"VLLM_BASE_URL": "http://h/v1", "LM_STUDIO_BASE_URL": "http://h/v1"})
    ]
    assert names == ["vllm", "lmstudio"]


def test_a_provider_of_the_config_file_replaces_the_preset_of_its_name() -> None:
    assert enabled_presets({"GROQ_API_KEY": "k"}, frozenset({"groq"})) == []


def test_every_hosted_preset_names_its_catalogue_and_every_name_is_unique() -> None:
    assert len({p.name for p in PRESETS}) == len(PRESETS)
    assert all(p.catalogue for p in PRESETS if not p.local)
