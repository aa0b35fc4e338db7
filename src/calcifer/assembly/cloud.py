"""The cloud providers built from the environment: AWS Bedrock and Google Vertex AI.

Bedrock is on when a region is set (`BEDROCK_REGION`, else `AWS_REGION` or `AWS_DEFAULT_REGION`);
`BEDROCK_BASE_URL` replaces the regional endpoint (a VPC endpoint), `BEDROCK_TIMEOUT` and
`BEDROCK_MAX_RETRIES` work as for the other providers. Credentials come from the standard AWS chain.
Its models are the catalogue's AWS entries under their Bedrock ids, each priced under
`bedrock/<id>` and, for the cross-region inference profiles of an in-region id (`us.`, `eu.`, ...),
at that model's price.

Vertex AI is on when `VERTEX_PROJECT` is set (`VERTEX_LOCATION`, default `us-central1`;
`VERTEX_BASE_URL` replaces `https://{location}-aiplatform.googleapis.com`), with credentials from
`GOOGLE_APPLICATION_CREDENTIALS` or application default credentials. Its models are Google's Gemini
chat models and Claude on Vertex, priced under `vertex/<model>` from Google's price list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calcifer.catalogue.book import CatalogueEntry, PriceBook, register_history
from calcifer.config.settings import provider_settings
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.retry import RetryPolicy
from calcifer.providers.aws_signing import AwsSigner, chain_credentials
from calcifer.providers.bedrock import BedrockProvider, base_model
from calcifer.providers.google_tokens import GoogleTokens, load_credentials
from calcifer.providers.vertex import VertexProvider, vertex_base_url

AWS_CATALOGUE = "aws"
_GEOGRAPHIES = ("us", "eu", "apac", "au", "jp", "ca", "us-gov")


@dataclass(frozen=True, slots=True)
class CloudProvider:
    provider: BedrockProvider | VertexProvider
    bare: frozenset[str]
    policy: RetryPolicy


def bedrock_region(env: Mapping[str, str]) -> str | None:
    for name in ("BEDROCK_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def bedrock_ids(book: PriceBook) -> dict[str, str]:
    """Bedrock model id -> the catalogue name its price is found under. The catalogue also names some
    models by a bare vendor name (`claude-...`), left out, and prices in-region ids as `regional.<id>`."""
    ids: dict[str, str] = {}
    for name in book.entries(AWS_CATALOGUE):
        model = name.removeprefix("regional.")
        if "." in model:
            ids.setdefault(model, name)
    return ids


def build_bedrock(
    env: Mapping[str, str],
    book: PriceBook,
    taken: set[str],
    pricing: PricingRegistry,
    overrides: Mapping[str, PricingConfig],
) -> CloudProvider | None:
    """The Bedrock provider when a region is set, with its prices registered; `taken` (bare names
    already claimed) grows with the ones it claims."""
    region = bedrock_region(env)
    if region is None:
        return None
    settings = provider_settings(env, "BEDROCK", f"https://bedrock-runtime.{region}.amazonaws.com")
    ids = bedrock_ids(book)
    signer = AwsSigner(chain_credentials(env), region)
    provider = BedrockProvider(
        models=frozenset(ids), signer=signer, base_url=settings.base_url, timeout=settings.timeout
    )
    bare = frozenset(ids) - taken
    taken.update(bare)

    def find(name: str) -> CatalogueEntry | None:
        model = base_model(name.removeprefix("bedrock/"))
        catalogue = ids.get(name.removeprefix("bedrock/")) or ids.get(model)
        return book.lookup(AWS_CATALOGUE, catalogue) if catalogue else None

    qualified = [f"bedrock/{m}" for m in sorted(ids)]
    profiles = [
        f"bedrock/{geo}.{m}"
        for m in sorted(ids)
        if base_model(m) == m and not m.startswith("global.")
        for geo in _GEOGRAPHIES
        if f"{geo}.{m}" not in ids
    ]
    register_history(pricing, [*qualified, *profiles], find, overrides)
    register_history(pricing, sorted(m for m in bare if m not in pricing), find, overrides)
    return CloudProvider(provider, bare, RetryPolicy(max_retries=settings.max_retries))


VERTEX_CATALOGUES = ("google", "google.claude", "google.embeddings")


def build_vertex(
    env: Mapping[str, str],
    book: PriceBook,
    taken: set[str],
    pricing: PricingRegistry,
    overrides: Mapping[str, PricingConfig],
) -> CloudProvider | None:
    """The Vertex AI provider when `VERTEX_PROJECT` is set, with its prices registered."""
    project = env.get("VERTEX_PROJECT", "").strip()
    if not project:
        return None
    location = env.get("VERTEX_LOCATION", "").strip() or "us-central1"
    default = vertex_base_url(project, location)
    settings = provider_settings(env, "VERTEX", default.split("/v1/", 1)[0])
    base_url = settings.base_url + "/v1/" + default.split("/v1/", 1)[1]
    found = {m: catalogue for catalogue in VERTEX_CATALOGUES for m in book.entries(catalogue)}
    credentials, _ = load_credentials(env)
    provider = VertexProvider(
        models=frozenset(found),
        tokens=GoogleTokens(credentials),
        base_url=base_url,
        max_output=book.max_output(),
        timeout=settings.timeout,
    )
    bare = frozenset(found) - taken
    taken.update(bare)

    def find(name: str) -> CatalogueEntry | None:
        model = name.removeprefix("vertex/")
        return book.lookup(found[model], model) if model in found else None

    register_history(pricing, [f"vertex/{m}" for m in sorted(found)], find, overrides)
    register_history(pricing, sorted(m for m in bare if m not in pricing), find, overrides)
    return CloudProvider(provider, bare, RetryPolicy(max_retries=settings.max_retries))
