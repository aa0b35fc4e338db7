"""The providers a config file declares, built from its specs."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from calcifer.config.file import FileConfig
from calcifer.domain.ports import Provider
from calcifer.providers.aws_signing import AwsSigner, chain_credentials
from calcifer.providers.azure import AZURE_API_VERSION, AzureOpenAIProvider
from calcifer.providers.bedrock import BedrockProvider
from calcifer.providers.openai import OpenAIProvider

DEFAULT_TIMEOUT = 60.0
# Servers known to speak OpenAI's Responses API, sent `/v1/responses` requests natively; other
# OpenAI-compatible servers get the chat-completions translation.
RESPONSES_HOSTS = frozenset({"api.openai.com"})


def build_file_providers(cfg: FileConfig, env: Mapping[str, str]) -> list[Provider]:
    """The providers the file declares; a key is read from the env var the file names."""
    providers: list[Provider] = []
    for spec in cfg.providers:
        providers.append(
            OpenAIProvider(
                models=frozenset(m.name for m in spec.models),
                api_key=env.get(spec.api_key_env) if spec.api_key_env else None,
                base_url=spec.base_url,
                timeout=spec.timeout or DEFAULT_TIMEOUT,
                name=spec.name,
                credential_setting=spec.api_key_env or "",
                key_required=spec.api_key_env is not None,
                headers=dict(spec.headers),
                responses=urlsplit(spec.base_url).hostname in RESPONSES_HOSTS,
            )
        )
    for az in cfg.azure:
        providers.append(
            AzureOpenAIProvider(
                endpoint=az.endpoint,
                deployments={m.name: m.deployment for m in az.models},
                api_key=env.get(az.api_key_env),
                api_version=az.api_version or AZURE_API_VERSION,
                timeout=az.timeout or DEFAULT_TIMEOUT,
                name=az.name,
                credential_setting=az.api_key_env,
            )
        )
    for deployment in cfg.bedrock:
        credentials = chain_credentials(env, deployment.profile)
        providers.append(
            BedrockProvider(
                models=frozenset(m.name for m in deployment.models),
                signer=AwsSigner(credentials, deployment.region),
                base_url=deployment.base_url,
                timeout=deployment.timeout or DEFAULT_TIMEOUT,
                name=deployment.name,
            )
        )
    return providers
