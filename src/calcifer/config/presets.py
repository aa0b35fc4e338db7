"""The OpenAI-compatible vendors Calcifer knows by name, each enabled by its usual environment variable.

A hosted vendor is enabled by its key variable alone (`GROQ_API_KEY`, ...); a keyless local server
(Ollama, vLLM, LM Studio) by its base URL variable. Every preset's base URL can be overridden with
`<VENDOR>_BASE_URL`, and `<VENDOR>_TIMEOUT` / `<VENDOR>_MAX_RETRIES` work as for OpenAI. The models of
a hosted vendor are those of its entry in the price catalogue; a local server serves whatever it has
loaded (`ollama/<model>`), and `<VENDOR>_MODELS` (comma-separated) lets its models be asked for by their
bare names too and listed by `/v1/models`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calcifer.config.settings import provider_settings


@dataclass(frozen=True, slots=True)
class Preset:
    name: str  # the provider name, and the prefix of `<name>/<model>`
    env: str  # the variables' prefix: `<env>_API_KEY`, `<env>_BASE_URL`, ...
    base_url: str
    catalogue: str | None  # the genai-prices provider id of its models and prices
    key_vars: tuple[str, ...] = ()  # other names the key goes by
    bare: bool = True  # whether its models are also asked for by their bare names
    local: bool = False  # keyless, enabled by its base URL variable
    embeddings: str = "openai"  # the dialect of its `/embeddings` ("voyage": Voyage AI's field names)
    model_prefix: str = ""  # sent before a bare catalogue id (Fireworks names models by account path)


PRESETS = (
    Preset("groq", "GROQ", "https://api.groq.com/openai/v1", "groq"),
    Preset("mistral", "MISTRAL", "https://api.mistral.ai/v1", "mistral"),
    Preset("deepseek", "DEEPSEEK", "https://api.deepseek.com/v1", "deepseek"),
    Preset("xai", "XAI", "https://api.x.ai/v1", "x-ai"),
    Preset("together", "TOGETHER", "https://api.together.xyz/v1", "together", ("TOGETHERAI_API_KEY",)),
    Preset(
        "fireworks",
        "FIREWORKS",
        "https://api.fireworks.ai/inference/v1",
        "fireworks",
        model_prefix="accounts/fireworks/models/",
    ),
    # OpenRouter's ids name other vendors (`deepseek/deepseek-chat`): reached as `openrouter/<id>` only.
    Preset("openrouter", "OPENROUTER", "https://openrouter.ai/api/v1", "openrouter", bare=False),
    Preset("cerebras", "CEREBRAS", "https://api.cerebras.ai/v1", "cerebras"),
    Preset("perplexity", "PERPLEXITY", "https://api.perplexity.ai", "perplexity", ("PERPLEXITYAI_API_KEY",)),
    # Cohere's OpenAI compatibility API (chat and embeddings); Voyage AI serves embeddings only.
    Preset("cohere", "COHERE", "https://api.cohere.ai/compatibility/v1", "cohere", ("CO_API_KEY",)),
    Preset("voyage", "VOYAGE", "https://api.voyageai.com/v1", "voyageai", embeddings="voyage"),
    Preset("ollama", "OLLAMA", "http://localhost:11434/v1", None, local=True),
    Preset("vllm", "VLLM", "http://localhost:8000/v1", None, local=True),
    Preset("lmstudio", "LM_STUDIO", "http://localhost:1234/v1", None, local=True),
)


@dataclass(frozen=True, slots=True)
class EnabledPreset:
    preset: Preset
    api_key: str | None
    base_url: str
    timeout: float
    max_retries: int
    models: frozenset[str]  # named in `<env>_MODELS` (local servers); hosted ones take the catalogue's

    @property
    def credential_setting(self) -> str:
        return f"{self.preset.env}_API_KEY"


def enabled_presets(env: Mapping[str, str], taken: frozenset[str] = frozenset()) -> list[EnabledPreset]:
    """The presets the environment enables, in `PRESETS` order, skipping the provider names in `taken`
    (a provider the config file declares under the same name replaces the preset)."""
    found: list[EnabledPreset] = []
    for preset in PRESETS:
        if preset.name in taken:
            continue
        settings = provider_settings(env, preset.env, preset.base_url)
        key = settings.api_key or next(
            (env[v].strip() for v in preset.key_vars if env.get(v, "").strip()), None
        )
        enabled = bool(env.get(f"{preset.env}_BASE_URL", "").strip()) if preset.local else key is not None
        if not enabled:
            continue
        listed = env.get(f"{preset.env}_MODELS", "")
        models = frozenset(m.strip() for m in listed.split(",") if m.strip())
        found.append(
            EnabledPreset(preset, key, settings.base_url, settings.timeout, settings.max_retries, models)
        )
    return found
