"""Provider registry: a model → provider reverse index, built once, O(1) per request.

A model is also addressed as `<provider>/<model>` (`groq/llama-3.3-70b-versatile`,
`openrouter/deepseek/deepseek-chat`): the part before the first `/` names a registered provider and the
rest a model it serves. That form wins over a bare name spelled the same way, so it always means what
it says; a bare name is served by the one provider that claimed it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping

from calcifer.domain.errors import DuplicateModel, ModelNotFound
from calcifer.domain.families import ModelFamilies
from calcifer.domain.ports import Provider


class ProviderRegistry:
    """Maps each model name (and alias) to the one provider that serves it.

    A model claimed by two providers is a configuration error and fails start-up.
    """

    def __init__(self, providers: Iterable[Provider] = (), aliases: Mapping[str, str] | None = None) -> None:
        self._by_model: dict[str, Provider] = {}
        self._providers: dict[str, Provider] = {}
        self._aliases: dict[str, str] = {}
        self.families = ModelFamilies()  # dated snapshot names, routed as their family's model
        for provider in providers:
            self.register(provider)
        for alias, target in (aliases or {}).items():
            self.alias(alias, target)

    def register(self, provider: Provider, *, claim: bool | Collection[str] = True) -> None:
        """Add a provider; with `claim=False` it claims no bare model name (it serves deployments and
        `<provider>/<model>` names only); given names, it claims just those (the rest of its models are
        reached as `<provider>/<model>`)."""
        if provider.name in self._providers:
            raise DuplicateModel(f"provider name {provider.name!r} is registered twice")
        if claim is False:
            self._providers[provider.name] = provider
            return
        claimed = provider.models if claim is True else frozenset(claim)
        for model in claimed:
            owner = self._by_model.get(model)
            if owner is not None:
                raise DuplicateModel(
                    f"model {model!r} is claimed by both {owner.name!r} and {provider.name!r}"
                )
            if model in self._aliases:
                raise DuplicateModel(f"model {model!r} of {provider.name!r} collides with an alias")
        self._providers[provider.name] = provider
        for model in claimed:
            self._by_model[model] = provider

    def alias(self, alias: str, target: str) -> None:
        """Route `alias` to the model `target` (which must already be routable)."""
        if alias in self._by_model or alias in self._aliases:
            raise DuplicateModel(f"alias {alias!r} collides with a model or alias of that name")
        if target not in self._by_model:
            raise ModelNotFound(target)
        self._aliases[alias] = target

    def claim(self, model: str, provider: Provider) -> None:
        """Make `model` (a name declared with deployments) resolvable, unless a provider or alias has it."""
        if model not in self._by_model and model not in self._aliases:
            self._by_model[model] = provider

    def resolve(self, model: str) -> tuple[Provider, str]:
        """The provider for `model` and the model name to send it (aliases resolved)."""
        target = self._aliases.get(model, model)
        if "/" in target:
            qualified = self._qualified(target)
            if qualified is not None:
                return qualified
        provider = self._by_model.get(target)
        if provider is None:
            family = self.families.canonical(target) if self.families else None
            provider = self._by_model.get(family) if family is not None else None
            if provider is None:
                raise ModelNotFound(model)
        return provider, target

    def _qualified(self, name: str) -> tuple[Provider, str] | None:
        """`<provider>/<model>` when the provider is registered and serves the model."""
        prefix, _, model = name.partition("/")
        provider = self._providers.get(prefix)
        if provider is None or not model:
            return None
        family = self.families.canonical(model) if self.families else None
        if provider.supports(model) or (family is not None and family in provider.models):
            return provider, model
        return None

    def get_by_model(self, model: str) -> Provider:
        return self.resolve(model)[0]

    def models(self) -> Iterator[tuple[str, Provider]]:
        """Every routable name (models, then aliases) with its provider."""
        yield from self._by_model.items()
        for alias, target in self._aliases.items():
            yield alias, self._by_model[target]

    def addressable(self) -> Iterator[tuple[str, Provider]]:
        """Every name a client may send, each once: the bare names (models, then aliases), then
        `<provider>/<model>` for each model each provider lists, with the provider that serves it."""
        seen: set[str] = set()
        for name, _ in self.models():
            seen.add(name)
            yield name, self.resolve(name)[0]
        for provider in self._providers.values():
            for model in sorted(provider.models):
                name = f"{provider.name}/{model}"
                if name not in seen:
                    seen.add(name)
                    yield name, self.resolve(name)[0]

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._providers
