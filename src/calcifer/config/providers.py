"""The `providers:`, `azure:`, `aliases:` and `prices:` sections of the config file: OpenAI-compatible
servers, Azure deployments, model aliases and price overrides, with prices parsed from their literal
text into `Decimal` (never through a binary float)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import yaml

from calcifer.config.reader import NULL_TAG, ConfigFileError, Node, Reader, line_of
from calcifer.domain.pricing import PricingConfig

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PRICE_KEYS = ("input", "output", "cached_input", "cache_write", "reasoning")


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
    api_version: str | None  # None: the adapter's default API version
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


class ProviderSections:
    """Reads the provider sections of one file, remembering the names and models declared so far
    (a second claim of a name is reported with the line of the first)."""

    def __init__(self, reader: Reader) -> None:
        self.r = reader
        self.names: dict[str, int] = {}  # provider name -> line
        self.models: dict[str, int] = {}  # model name -> line
        self.claiming = True  # models of a `claim: false` provider may repeat another's

    def compatible_list(self, node: Node) -> list[CompatibleProviderSpec]:
        items = self.r.sequence(node, "providers")
        return [self.compatible(n, f"providers[{i}]") for i, n in enumerate(items)]

    def azure_list(self, node: Node) -> list[AzureSpec]:
        nodes = [node] if isinstance(node, yaml.MappingNode) else self.r.sequence(node, "azure")
        return [self.azure(n, f"azure[{i}]") for i, n in enumerate(nodes)]

    def price_overrides(self, node: Node) -> list[ModelSpec]:
        return [
            ModelSpec(model, self.price(value, f"prices.{model}", required=True), line_of(value))
            for model, value in self.r.mapping(node, "prices").items()
        ]

    def provider_name(self, node: Node, where: str) -> str:
        name = self.r.text(node, f"{where}.name")
        if not _NAME.match(name):
            raise self.r.fail(node, f"{where}.name {name!r} may use only letters, digits, '_', '.', '-'")
        if name in self.names:
            raise self.r.fail(node, f"provider name {name!r} is already used on line {self.names[name]}")
        self.names[name] = line_of(node)
        return name

    def limits(self, fields: Mapping[str, Node], where: str) -> tuple[float | None, int | None]:
        timeout = retries = None
        if "timeout" in fields:
            value = self.r.number(fields["timeout"], f"{where}.timeout")
            if value == 0:
                raise self.r.fail(fields["timeout"], f"{where}.timeout must be more than 0 seconds")
            timeout = float(value)
        if "max_retries" in fields:
            count = self.r.number(fields["max_retries"], f"{where}.max_retries")
            if count != count.to_integral_value():
                raise self.r.fail(fields["max_retries"], f"{where}.max_retries must be a whole number")
            retries = int(count)
        return timeout, retries

    def compatible(self, node: Node, where: str) -> CompatibleProviderSpec:
        r = self.r
        keys = ("name", "base_url", "api_key_env", "models", "timeout", "max_retries", "headers", "claim")
        fields = r.mapping(node, where, keys)
        claim = self.claiming = self.claim(fields, where)
        for required in ("name", "base_url", "models"):
            if required not in fields:
                raise r.fail(node, f"{where} needs {required!r}")
        name = self.provider_name(fields["name"], where)
        key_env = (
            r.env_name(fields["api_key_env"], f"{where}.api_key_env") if "api_key_env" in fields else None
        )
        headers = {}
        if "headers" in fields:
            raw = r.mapping(fields["headers"], f"{where}.headers")
            headers = {k: r.text(v, f"{where}.headers.{k}") for k, v in raw.items()}
        models = self.model_list(fields["models"], f"{where}.models")
        timeout, retries = self.limits(fields, where)
        base_url = r.url(fields["base_url"], f"{where}.base_url")
        return CompatibleProviderSpec(
            name, base_url, key_env, models, timeout, retries, tuple(headers.items()), line_of(node), claim
        )

    def claim(self, fields: Mapping[str, Node], where: str) -> bool:
        node = fields.get("claim")
        if node is None:
            return True
        flag = self.r.flag(node)
        if flag is None:
            raise self.r.fail(node, f"{where}.claim must be true or false")
        return flag

    def model_list(self, node: Node, where: str) -> tuple[ModelSpec, ...]:
        r = self.r
        specs: list[ModelSpec] = []
        if isinstance(node, yaml.MappingNode):
            for model, value in r.mapping(node, where).items():
                null = isinstance(value, yaml.ScalarNode) and value.tag == NULL_TAG
                price = None if null else self.price(value, f"{where}.{model}", required=False)
                specs.append(self.model(value, model, price))
        else:
            for i, item in enumerate(r.sequence(node, where)):
                if isinstance(item, yaml.ScalarNode):
                    specs.append(self.model(item, r.text(item, f"{where}[{i}]"), None))
                    continue
                fields = r.mapping(item, f"{where}[{i}]", ("name", *_PRICE_KEYS))
                if "name" not in fields:
                    raise r.fail(item, f"{where}[{i}] needs 'name'")
                model = r.text(fields["name"], f"{where}[{i}].name")
                price = self.price(item, f"{where}[{i}]", required=False, extra=("name",))
                specs.append(self.model(item, model, price))
        if not specs:
            raise r.fail(node, f"{where} must list at least one model")
        return tuple(specs)

    def model(self, node: Node, name: str, price: PricingConfig | None, deployment: str = "") -> ModelSpec:
        line = line_of(node)
        if self.claiming and name in self.models:
            raise self.r.fail(node, f"model {name!r} is already declared on line {self.models[name]}")
        if self.claiming:
            self.models[name] = line
        return ModelSpec(name, price, line, deployment)

    def price(
        self, node: Node, where: str, *, required: bool, extra: Collection[str] = ()
    ) -> PricingConfig | None:
        allowed = [*_PRICE_KEYS, *extra]
        fields = {k: v for k, v in self.r.mapping(node, where, allowed).items() if k in _PRICE_KEYS}
        if not fields and not required:
            return None
        for needed in ("input", "output"):
            if needed not in fields:
                raise self.r.fail(node, f"{where} sets a price without {needed!r} (USD per 1M tokens)")
        rates = {k: self.r.number(v, f"{where}.{k}") for k, v in fields.items()}
        return PricingConfig.per_million(
            rates["input"],
            rates["output"],
            cached_input=rates.get("cached_input"),
            cache_write=rates.get("cache_write"),
            reasoning=rates.get("reasoning"),
        )

    def azure(self, node: Node, where: str) -> AzureSpec:
        r = self.r
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
        fields = r.mapping(node, where, keys)
        claim = self.claiming = self.claim(fields, where)
        for required in ("endpoint", "deployments"):
            if required not in fields:
                raise r.fail(node, f"{where} needs {required!r}")
        name = (
            self.provider_name(fields["name"], where) if "name" in fields else self.default_azure_name(node)
        )
        key_env = "AZURE_OPENAI_API_KEY"
        if "api_key_env" in fields:
            key_env = r.env_name(fields["api_key_env"], f"{where}.api_key_env")
        version = r.text(fields["api_version"], f"{where}.api_version") if "api_version" in fields else None
        deployments: list[ModelSpec] = []
        for model, value in r.mapping(fields["deployments"], f"{where}.deployments").items():
            spot = f"{where}.deployments.{model}"
            if isinstance(value, yaml.ScalarNode):
                deployments.append(self.model(value, model, None, r.text(value, spot)))
                continue
            inner = r.mapping(value, spot)
            if "deployment" not in inner:
                raise r.fail(value, f"{spot} needs 'deployment' (the Azure deployment name)")
            price = self.price(value, spot, required=False, extra=("deployment",))
            deployments.append(
                self.model(value, model, price, r.text(inner["deployment"], f"{spot}.deployment"))
            )
        if not deployments:
            raise r.fail(fields["deployments"], f"{where}.deployments must map at least one model")
        timeout, retries = self.limits(fields, where)
        endpoint = r.url(fields["endpoint"], f"{where}.endpoint")
        return AzureSpec(
            name, endpoint, key_env, version, tuple(deployments), timeout, retries, line_of(node), claim
        )

    def default_azure_name(self, node: Node) -> str:
        if "azure" in self.names:
            raise self.r.fail(node, "every Azure resource after the first needs its own 'name'")
        self.names["azure"] = line_of(node)
        return "azure"

    def aliases(self, node: Node) -> list[AliasSpec]:
        specs = []
        for alias, value in self.r.mapping(node, "aliases").items():
            target = self.r.text(value, f"aliases.{alias}")
            if alias in self.models:
                raise self.r.fail(
                    value, f"alias {alias!r} is also a model declared on line {self.models[alias]}"
                )
            specs.append(AliasSpec(alias, target, line_of(value)))
        names = {s.alias for s in specs}
        for spec in specs:
            if spec.target in names:
                raise ConfigFileError(self.r.path, spec.line, f"alias {spec.alias!r} points to another alias")
        return specs
