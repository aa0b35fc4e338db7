"""The YAML file named by `CALCIFER_CONFIG`: OpenAI-compatible providers, Azure deployments, model
aliases and price overrides (every key is shown in `examples/calcifer.yaml`).

The file is read as YAML nodes, so every problem is reported with its line, and prices are parsed
from their literal text into `Decimal` (never through a binary float).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml

from calcifer.config_routing import RoutingFileSpec, read_sections
from calcifer.domain.pricing import PricingConfig
from calcifer.file_providers import build_file_providers
from calcifer.providers.azure import AZURE_API_VERSION

__all__ = ["ConfigFileError", "FileConfig", "build_file_providers", "load_file_config", "parse_file_config"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PRICE_KEYS = ("input", "output", "cached_input", "cache_write", "reasoning")
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"


class ConfigFileError(ValueError):
    """A problem in the config file, named with the file and the line: start-up stops on it."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    price: PricingConfig | None
    line: int
    deployment: str = ""  # Azure only


@dataclass(frozen=True, slots=True)
class CompatibleProviderSpec:
    name: str
    base_url: str
    api_key_env: str | None
    models: tuple[ModelSpec, ...]
    timeout: float | None
    max_retries: int | None
    headers: tuple[tuple[str, str], ...]
    line: int
    claim: bool = True  # False: its models are reached only through `routing` deployments


@dataclass(frozen=True, slots=True)
class AzureSpec:
    name: str
    endpoint: str
    api_key_env: str
    api_version: str
    models: tuple[ModelSpec, ...]  # each with its deployment
    timeout: float | None
    max_retries: int | None
    line: int
    claim: bool = True


@dataclass(frozen=True, slots=True)
class AliasSpec:
    alias: str
    target: str
    line: int


@dataclass(frozen=True, slots=True)
class FileConfig:
    path: str
    providers: tuple[CompatibleProviderSpec, ...] = ()
    azure: tuple[AzureSpec, ...] = ()
    aliases: tuple[AliasSpec, ...] = ()
    price_overrides: tuple[ModelSpec, ...] = ()
    routing: RoutingFileSpec | None = None

    def _declared(self) -> list[CompatibleProviderSpec | AzureSpec]:
        return [*self.providers, *self.azure]

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
    return _Reader(path).file(root)


Node = yaml.Node


class _Reader:
    """Turns the composed YAML tree into `FileConfig`, checking every value where it stands."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.names: dict[str, int] = {}  # provider name -> line
        self.models: dict[str, int] = {}  # model name -> line
        self.claiming = True  # models of a `claim: false` provider may repeat another's

    def fail(self, node: Node, problem: str) -> ConfigFileError:
        return ConfigFileError(self.path, node.start_mark.line + 1, problem)

    def mapping(self, node: Node, where: str, allowed: Collection[str] | None = None) -> dict[str, Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        out: dict[str, Node] = {}
        for key_node, value in node.value:
            key = self.text(key_node, f"a key in {where}")
            if key in out:
                raise self.fail(key_node, f"{where} has {key!r} twice")
            if allowed is not None and key not in allowed:
                raise self.fail(key_node, f"{where} has unknown key {key!r} (allowed: {', '.join(allowed)})")
            out[key] = value
        return out

    def sequence(self, node: Node, where: str) -> list[Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        return list(node.value)

    def text(self, node: Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag in (_NULL, _BOOL) or not str(node.value).strip():
            raise self.fail(node, f"{where} must be a non-empty string")
        return str(node.value).strip()

    def number(self, node: Node, where: str) -> Decimal:
        if isinstance(node, yaml.ScalarNode) and node.tag not in (_NULL, _BOOL):
            try:
                value = Decimal(str(node.value).strip())
            except InvalidOperation:
                value = Decimal("NaN")
            if value.is_finite() and value >= 0:
                return value
        raise self.fail(node, f"{where} must be a number >= 0")

    def file(self, root: Node) -> FileConfig:
        sections = ("providers", "azure", "aliases", "prices", "routing", "cache")
        top = self.mapping(root, "the top level", sections)
        providers = [
            self.compatible(n, f"providers[{i}]")
            for i, n in enumerate(self.sequence(top["providers"], "providers") if "providers" in top else [])
        ]
        azure_node = top.get("azure")
        azure_nodes: list[Node] = [azure_node] if isinstance(azure_node, yaml.MappingNode) else []
        if azure_node is not None and not azure_nodes:
            azure_nodes = self.sequence(azure_node, "azure")
        azure = [self.azure(n, f"azure[{i}]") for i, n in enumerate(azure_nodes)]
        overrides = []
        if "prices" in top:
            for model, value in self.mapping(top["prices"], "prices").items():
                price = self.price(value, f"prices.{model}", required=True)
                overrides.append(ModelSpec(model, price, value.start_mark.line + 1))
        aliases = self.aliases(top["aliases"]) if "aliases" in top else []
        routing = read_sections(self, top.get("routing"), top.get("cache"))
        return FileConfig(
            self.path, tuple(providers), tuple(azure), tuple(aliases), tuple(overrides), routing
        )

    def provider_name(self, node: Node, where: str) -> str:
        name = self.text(node, f"{where}.name")
        if not _NAME.match(name):
            raise self.fail(node, f"{where}.name {name!r} may use only letters, digits, '_', '.', '-'")
        if name in self.names:
            raise self.fail(node, f"provider name {name!r} is already used on line {self.names[name]}")
        self.names[name] = node.start_mark.line + 1
        return name

    def env_name(self, node: Node, where: str) -> str:
        value = self.text(node, where)
        if not _ENV_VAR.match(value):  # never echo it: it may be a key pasted in by mistake
            raise self.fail(node, f"{where} must name an environment variable (like GROQ_API_KEY), not a key")
        return value

    def url(self, node: Node, where: str) -> str:
        value = self.text(node, where)
        if not re.match(r"^https?://[^/\s]+", value):
            raise self.fail(node, f"{where} must be an http:// or https:// URL")
        return value

    def limits(self, fields: Mapping[str, Node], where: str) -> tuple[float | None, int | None]:
        timeout = retries = None
        if "timeout" in fields:
            value = self.number(fields["timeout"], f"{where}.timeout")
            if value == 0:
                raise self.fail(fields["timeout"], f"{where}.timeout must be more than 0 seconds")
            timeout = float(value)
        if "max_retries" in fields:
            count = self.number(fields["max_retries"], f"{where}.max_retries")
            if count != count.to_integral_value():
                raise self.fail(fields["max_retries"], f"{where}.max_retries must be a whole number")
            retries = int(count)
        return timeout, retries

    def compatible(self, node: Node, where: str) -> CompatibleProviderSpec:
        keys = ("name", "base_url", "api_key_env", "models", "timeout", "max_retries", "headers", "claim")
        fields = self.mapping(node, where, keys)
        claim = self.claiming = self.claim(fields, where)
        for required in ("name", "base_url", "models"):
            if required not in fields:
                raise self.fail(node, f"{where} needs {required!r}")
        name = self.provider_name(fields["name"], where)
        key_env = (
            self.env_name(fields["api_key_env"], f"{where}.api_key_env") if "api_key_env" in fields else None
        )
        headers = {}
        if "headers" in fields:
            raw = self.mapping(fields["headers"], f"{where}.headers")
            headers = {k: self.text(v, f"{where}.headers.{k}") for k, v in raw.items()}
        models = self.model_list(fields["models"], f"{where}.models")
        timeout, retries = self.limits(fields, where)
        base_url = self.url(fields["base_url"], f"{where}.base_url")
        line = node.start_mark.line + 1
        return CompatibleProviderSpec(
            name, base_url, key_env, models, timeout, retries, tuple(headers.items()), line, claim
        )

    def claim(self, fields: Mapping[str, Node], where: str) -> bool:
        node = fields.get("claim")
        if node is None:
            return True
        if not isinstance(node, yaml.ScalarNode) or node.tag != _BOOL:
            raise self.fail(node, f"{where}.claim must be true or false")
        return str(node.value).lower() in ("true", "yes", "on", "y")

    def model_list(self, node: Node, where: str) -> tuple[ModelSpec, ...]:
        specs: list[ModelSpec] = []
        if isinstance(node, yaml.MappingNode):
            for model, value in self.mapping(node, where).items():
                null = isinstance(value, yaml.ScalarNode) and value.tag == _NULL
                price = None if null else self.price(value, f"{where}.{model}", required=False)
                specs.append(self.model(value, model, price))
        else:
            for i, item in enumerate(self.sequence(node, where)):
                if isinstance(item, yaml.ScalarNode):
                    specs.append(self.model(item, self.text(item, f"{where}[{i}]"), None))
                    continue
                fields = self.mapping(item, f"{where}[{i}]", ("name", *_PRICE_KEYS))
                if "name" not in fields:
                    raise self.fail(item, f"{where}[{i}] needs 'name'")
                model = self.text(fields["name"], f"{where}[{i}].name")
                price = self.price(item, f"{where}[{i}]", required=False, extra=("name",))
                specs.append(self.model(item, model, price))
        if not specs:
            raise self.fail(node, f"{where} must list at least one model")
        return tuple(specs)

    def model(self, node: Node, name: str, price: PricingConfig | None, deployment: str = "") -> ModelSpec:
        line = node.start_mark.line + 1
        if self.claiming and name in self.models:
            raise self.fail(node, f"model {name!r} is already declared on line {self.models[name]}")
        if self.claiming:
            self.models[name] = line
        return ModelSpec(name, price, line, deployment)

    def price(
        self, node: Node, where: str, *, required: bool, extra: Collection[str] = ()
    ) -> PricingConfig | None:
        allowed = [*_PRICE_KEYS, *extra]
        fields = {k: v for k, v in self.mapping(node, where, allowed).items() if k in _PRICE_KEYS}
        if not fields and not required:
            return None
        for needed in ("input", "output"):
            if needed not in fields:
                raise self.fail(node, f"{where} sets a price without {needed!r} (USD per 1M tokens)")
        rates = {k: self.number(v, f"{where}.{k}") for k, v in fields.items()}
        return PricingConfig.per_million(
            rates["input"],
            rates["output"],
            cached_input=rates.get("cached_input"),
            cache_write=rates.get("cache_write"),
            reasoning=rates.get("reasoning"),
        )

    def azure(self, node: Node, where: str) -> AzureSpec:
        keys = (
            "name",
            "endpoint",
            "api_key_env",
            "api_version",
            "deployments",
            "timeout",
            "max_retries",
            "claim",
        )
        fields = self.mapping(node, where, keys)
        claim = self.claiming = self.claim(fields, where)
        for required in ("endpoint", "deployments"):
            if required not in fields:
                raise self.fail(node, f"{where} needs {required!r}")
        name = (
            self.provider_name(fields["name"], where) if "name" in fields else self.default_azure_name(node)
        )
        key_env = "AZURE_OPENAI_API_KEY"
        if "api_key_env" in fields:
            key_env = self.env_name(fields["api_key_env"], f"{where}.api_key_env")
        version = (
            self.text(fields["api_version"], f"{where}.api_version") if "api_version" in fields else None
        )
        deployments: list[ModelSpec] = []
        for model, value in self.mapping(fields["deployments"], f"{where}.deployments").items():
            spot = f"{where}.deployments.{model}"
            if isinstance(value, yaml.ScalarNode):
                deployments.append(self.model(value, model, None, self.text(value, spot)))
                continue
            inner = self.mapping(value, spot)
            if "deployment" not in inner:
                raise self.fail(value, f"{spot} needs 'deployment' (the Azure deployment name)")
            price = self.price(value, spot, required=False, extra=("deployment",))
            deployments.append(
                self.model(value, model, price, self.text(inner["deployment"], f"{spot}.deployment"))
            )
        if not deployments:
            raise self.fail(fields["deployments"], f"{where}.deployments must map at least one model")
        timeout, retries = self.limits(fields, where)
        endpoint = self.url(fields["endpoint"], f"{where}.endpoint")
        line = node.start_mark.line + 1
        version = version or AZURE_API_VERSION
        return AzureSpec(name, endpoint, key_env, version, tuple(deployments), timeout, retries, line, claim)

    def default_azure_name(self, node: Node) -> str:
        if "azure" in self.names:
            raise self.fail(node, "every Azure resource after the first needs its own 'name'")
        self.names["azure"] = node.start_mark.line + 1
        return "azure"

    def aliases(self, node: Node) -> list[AliasSpec]:
        specs = []
        for alias, value in self.mapping(node, "aliases").items():
            target = self.text(value, f"aliases.{alias}")
            if alias in self.models:
                raise self.fail(
                    value, f"alias {alias!r} is also a model declared on line {self.models[alias]}"
                )
            specs.append(AliasSpec(alias, target, value.start_mark.line + 1))
        names = {s.alias for s in specs}
        for spec in specs:
            if spec.target in names:
                raise ConfigFileError(self.path, spec.line, f"alias {spec.alias!r} points to another alias")
        return specs
