"""The YAML file named by `CALCIFER_CONFIG` (every key is shown in `examples/calcifer.yaml`).

The file is read as YAML nodes, so every problem is reported with its line. Each section is read by
its own module: `providers` (OpenAI-compatible servers, Azure, aliases, prices) and `routing`
(deployments, fallbacks, cooldowns, the response cache).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from calcifer.config.bedrock import BedrockSpec, read_bedrock
from calcifer.config.observability import ObservabilitySpec, read_observability
from calcifer.config.providers import (
    AliasSpec,
    AzureSpec,
    CompatibleProviderSpec,
    ModelSpec,
    ProviderSections,
)
from calcifer.config.reader import ConfigFileError, Reader
from calcifer.config.routing import RoutingFileSpec, read_sections
from calcifer.domain.pricing import PricingConfig

_SECTIONS = ("providers", "azure", "bedrock", "aliases", "prices", "routing", "cache", "metrics", "tracing")


@dataclass(frozen=True, slots=True)
class FileConfig:
    path: str
    providers: tuple[CompatibleProviderSpec, ...] = ()
    azure: tuple[AzureSpec, ...] = ()
    bedrock: tuple[BedrockSpec, ...] = ()
    aliases: tuple[AliasSpec, ...] = ()
    price_overrides: tuple[ModelSpec, ...] = ()
    routing: RoutingFileSpec | None = None
    observability: ObservabilitySpec = field(default_factory=ObservabilitySpec)

    def _declared(self) -> list[CompatibleProviderSpec | AzureSpec | BedrockSpec]:
        return [*self.providers, *self.azure, *self.bedrock]

    def prices(self) -> dict[str, PricingConfig]:
        """Every price the file sets: its models' prices, then `prices:` overrides (which win)."""
        table: dict[str, PricingConfig] = {}
        for spec in self._declared():
            table.update({m.name: m.price for m in spec.models if m.price is not None})
        table.update({m.name: m.price for m in self.price_overrides if m.price is not None})
        return table

    def unclaimed(self) -> frozenset[str]:
        """The providers declared with `claim: false`."""
        return frozenset(p.name for p in self._declared() if not p.claim)

    def max_retries(self) -> dict[str, int]:
        """Provider name -> its `max_retries`, for the providers that set one."""
        return {p.name: p.max_retries for p in self._declared() if p.max_retries is not None}

    def aliases_for(self, routable: Collection[str]) -> dict[str, str]:
        """The alias map, checked against the routable model names (a bad alias names its line)."""
        result: dict[str, str] = {}
        for spec in self.aliases:
            if spec.alias in routable:
                raise ConfigFileError(self.path, spec.line, f"alias {spec.alias!r} is already a model name")
            if spec.target not in routable:
                problem = f"alias {spec.alias!r} points to {spec.target!r}, which no provider serves"
                raise ConfigFileError(self.path, spec.line, problem)
            result[spec.alias] = spec.target
        return result


def load_file_config(path: str | Path) -> FileConfig:
    """Read and check the config file; any problem raises `ConfigFileError` naming file and line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(name, None, f"cannot read the config file: {exc.__class__.__name__}") from exc
    return parse_file_config(text, name)


def parse_file_config(text: str, path: str = "<config>") -> FileConfig:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigFileError(path, line, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ConfigFileError(path, None, f"invalid YAML: {exc}") from exc
    if root is None:
        return FileConfig(path)
    reader = Reader(path)
    top = reader.mapping(root, "the top level", _SECTIONS)
    sections = ProviderSections(reader)
    providers = sections.compatible_list(top["providers"]) if "providers" in top else []
    azure = sections.azure_list(top["azure"]) if "azure" in top else []
    bedrock = read_bedrock(sections, top["bedrock"]) if "bedrock" in top else []
    overrides = sections.price_overrides(top["prices"]) if "prices" in top else []
    aliases = sections.aliases(top["aliases"]) if "aliases" in top else []
    routing = read_sections(reader, top.get("routing"), top.get("cache"))
    observability = read_observability(reader, top.get("metrics"), top.get("tracing"))
    return FileConfig(
        path,
        tuple(providers),
        tuple(azure),
        tuple(bedrock),
        tuple(aliases),
        tuple(overrides),
        routing,
        observability,
    )
