"""Provider plugins: third-party packages add providers through the `calcifer.providers` entry points.

A plugin's `pyproject.toml` declares

    [project.entry-points."calcifer.providers"]
    acme = "calcifer_acme:create_provider"

where the target is a factory `(env: Mapping[str, str]) -> Provider`, or a `Provider` class (built
with `env` when its constructor takes an argument, else with none). A provider may also price its
models by offering `prices() -> Mapping[str, PricingConfig]` (`PriceList`). A plugin that fails to
load or does not build a `Provider` stops start-up with a message naming the entry point.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Protocol, runtime_checkable

from calcifer.domain.ports import Provider
from calcifer.domain.pricing import PricingConfig

ENTRY_POINT_GROUP = "calcifer.providers"


class PluginError(RuntimeError):
    """A provider plugin could not be loaded or built: a start-up error."""


@runtime_checkable
class PriceList(Protocol):
    """A provider that carries the prices of its own models."""

    def prices(self) -> Mapping[str, PricingConfig]: ...


def load_plugins(env: Mapping[str, str], *, found: Iterable[EntryPoint] | None = None) -> list[Provider]:
    """Build one provider per installed `calcifer.providers` entry point, in entry-point name order."""
    points = entry_points(group=ENTRY_POINT_GROUP) if found is None else found
    return [_build(point, env) for point in sorted(points, key=lambda p: p.name)]


def _describe(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    source = f" from {dist.name} {dist.version}" if dist is not None else ""
    return f"provider plugin {point.name!r} ({point.value}{source})"


def _build(point: EntryPoint, env: Mapping[str, str]) -> Provider:
    try:
        target = point.load()
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{_describe(point)} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise PluginError(f"{_describe(point)} names {type(target).__name__}, not a factory or a class")
    try:
        provider = _call(target, env)
    except Exception as exc:  # a third party's constructor may raise anything: report it, stop start-up
        raise PluginError(f"{_describe(point)} failed to build: {type(exc).__name__}: {exc}") from exc
    if not isinstance(provider, Provider):
        raise PluginError(
            f"{_describe(point)} built {type(provider).__name__}, which is not a Provider "
            "(it needs name, models, complete, stream and supports)"
        )
    if not isinstance(provider.name, str) or not provider.name:
        raise PluginError(f"{_describe(point)} built a provider without a name")
    if not isinstance(provider.models, frozenset | set) or not all(
        isinstance(m, str) for m in provider.models
    ):
        raise PluginError(f"{_describe(point)} built a provider whose models are not a set of names")
    return provider


def _call(target: Callable[..., object], env: Mapping[str, str]) -> object:
    if inspect.isclass(target) and not _takes_argument(target):
        return target()
    return target(env)


def _takes_argument(cls: type) -> bool:
    """Whether a class's constructor requires a positional argument (then it is given `env`)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return any(p.default is p.empty and p.kind in positional for p in parameters)


def plugin_prices(providers: Iterable[Provider]) -> dict[str, PricingConfig]:
    """The prices plugins carry for their own models (a price for a model it does not serve is an error)."""
    table: dict[str, PricingConfig] = {}
    for provider in providers:
        if not isinstance(provider, PriceList):
            continue
        for model, price in provider.prices().items():
            if model not in provider.models:
                raise PluginError(f"provider {provider.name!r} prices {model!r}, a model it does not serve")
            if not isinstance(price, PricingConfig):
                raise PluginError(
                    f"provider {provider.name!r} gives {model!r} a price that is not a PricingConfig"
                )
            table[model] = price
    return table
