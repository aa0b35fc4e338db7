"""Provider registry: the model → provider reverse index, aliases, and fail-fast duplicates."""

from __future__ import annotations

import pytest

from calcifer.domain.errors import DuplicateModel, ModelNotFound
from calcifer.domain.families import ModelFamilies
from calcifer.domain.ports import Provider
from calcifer.domain.routing import ProviderRegistry
from calcifer.providers.echo import ECHO_MODEL, EchoProvider
from tests.domain.doubles import ScriptedProvider


def _registry() -> tuple[ProviderRegistry, ScriptedProvider, ScriptedProvider]:
    a = ScriptedProvider("a", ["a-1", "a-2"])
    b = ScriptedProvider("b", ["b-1"])
    return ProviderRegistry([a, b]), a, b


def test_doubles_satisfy_the_provider_port() -> None:
    assert isinstance(ScriptedProvider(), Provider)
    assert isinstance(EchoProvider(), Provider)


def test_resolve_maps_each_model_to_its_provider() -> None:
    registry, a, b = _registry()
    assert registry.resolve("a-1") == (a, "a-1")
    assert registry.resolve("a-2") == (a, "a-2")
    assert registry.resolve("b-1") == (b, "b-1")
    assert registry.get_by_model("b-1") is b


def test_resolve_is_a_dict_lookup_not_a_scan() -> None:
    # O(1): resolving never asks the providers (a scan would call `supports`)
    class Counting(ScriptedProvider):
        calls = 0

        def supports(self, model: str) -> bool:
            Counting.calls += 1
            return super().supports(model)

    providers = [Counting(f"p{i}", [f"m{i}"]) for i in range(200)]
    registry = ProviderRegistry(providers)
    assert registry.resolve("m199")[0] is providers[199]
    assert Counting.calls == 0


def test_unknown_model_raises_model_not_found_naming_it() -> None:
    registry, _, _ = _registry()
    with pytest.raises(ModelNotFound) as caught:
        registry.resolve("gpt-9")
    assert caught.value.model == "gpt-9"
    with pytest.raises(ModelNotFound):
        registry.get_by_model("gpt-9")


def test_empty_registry() -> None:
    registry = ProviderRegistry()
    assert list(registry.models()) == []
    assert dict(registry.providers) == {}
    with pytest.raises(ModelNotFound):
        registry.resolve(ECHO_MODEL)


def test_a_model_claimed_twice_fails_and_leaves_the_registry_unchanged() -> None:
    registry, a, _ = _registry()
    greedy = ScriptedProvider("c", ["c-1", "a-2"])
    with pytest.raises(DuplicateModel, match=r"'a-2'.*'a'.*'c'"):
        registry.register(greedy)
    assert "c" not in registry.providers
    assert registry.resolve("a-2")[0] is a
    with pytest.raises(ModelNotFound):
        registry.resolve("c-1")


def test_a_model_claimed_twice_at_construction_fails() -> None:
    with pytest.raises(DuplicateModel):
        ProviderRegistry([ScriptedProvider("x", ["m"]), ScriptedProvider("y", ["m"])])


def test_a_provider_name_registered_twice_fails() -> None:
    registry, _, _ = _registry()
    with pytest.raises(DuplicateModel, match="'a'"):
        registry.register(ScriptedProvider("a", ["other"]))
    with pytest.raises(ModelNotFound):
        registry.resolve("other")


def test_aliases_resolve_to_their_target_and_its_provider() -> None:
    a = ScriptedProvider("a", ["a-1"])
    registry = ProviderRegistry([a], aliases={"fast": "a-1"})
    assert registry.resolve("fast") == (a, "a-1")
    assert registry.get_by_model("fast") is a


def test_alias_colliding_with_a_model_or_an_alias_fails() -> None:
    registry, _, _ = _registry()
    with pytest.raises(DuplicateModel):
        registry.alias("a-1", "b-1")
    registry.alias("fast", "a-1")
    with pytest.raises(DuplicateModel):
        registry.alias("fast", "b-1")
    assert registry.resolve("fast")[1] == "a-1"


def test_alias_to_an_unknown_target_fails() -> None:
    registry, _, _ = _registry()
    with pytest.raises(ModelNotFound):
        registry.alias("fast", "nope")
    with pytest.raises(ModelNotFound):
        registry.alias("fast2", "fast")  # an alias of an unknown alias
    with pytest.raises(ModelNotFound):
        registry.resolve("fast")


def test_a_provider_model_colliding_with_an_existing_alias_fails() -> None:
    registry, a, _ = _registry()
    registry.alias("fast", "a-1")
    with pytest.raises(DuplicateModel, match="'fast'"):
        registry.register(ScriptedProvider("c", ["fast"]))
    assert registry.resolve("fast") == (a, "a-1")
    assert "c" not in registry.providers


def test_models_lists_every_model_then_every_alias() -> None:
    registry, a, b = _registry()
    registry.alias("fast", "b-1")
    listed = list(registry.models())
    assert sorted(listed[:3], key=lambda item: item[0]) == [("a-1", a), ("a-2", a), ("b-1", b)]
    assert listed[3:] == [("fast", b)]


def test_providers_by_name() -> None:
    registry, a, _ = _registry()
    registry.register(EchoProvider())
    assert set(registry.providers) == {"a", "b", "echo"}
    assert registry.providers["a"] is a
    assert registry.resolve(ECHO_MODEL)[0].name == "echo"


def test_a_provider_registered_without_claims_serves_only_names_given_to_it() -> None:
    from calcifer.domain.routing import ProviderRegistry
    from tests.domain.doubles import ScriptedProvider

    first = ScriptedProvider("a", {"m"})
    pool = ScriptedProvider("pool", {"m", "n"})
    registry = ProviderRegistry([first])
    registry.register(pool, claim=False)  # "m" stays first's; no DuplicateModel
    assert registry.resolve("m") == (first, "m")
    assert registry.providers["pool"] is pool
    registry.claim("n", pool)
    registry.claim("m", pool)  # already taken: ignored
    assert registry.resolve("n") == (pool, "n") and registry.resolve("m") == (first, "m")


def test_a_provider_qualified_name_routes_to_that_provider_under_the_bare_name() -> None:
    registry, a, b = _registry()
    assert registry.resolve("a/a-1") == (a, "a-1")
    assert registry.resolve("b/b-1") == (b, "b-1")
    for unknown in ("a/b-1", "c/a-1", "a/", "a-1/x"):
        with pytest.raises(ModelNotFound):
            registry.resolve(unknown)


def test_the_qualified_form_wins_over_a_bare_name_spelled_the_same() -> None:
    a = ScriptedProvider("a", ["m"])
    vendor = ScriptedProvider("v", ["a/m", "x/y"])  # a vendor whose ids name other vendors
    registry = ProviderRegistry([a, vendor])
    assert registry.resolve("a/m") == (a, "m")
    assert registry.resolve("x/y") == (vendor, "x/y")  # no provider `x`: the bare name
    assert registry.resolve("v/a/m") == (vendor, "a/m")


def test_claiming_only_some_names_leaves_the_rest_to_the_qualified_form() -> None:
    a = ScriptedProvider("a", ["shared"])
    b = ScriptedProvider("b", ["shared", "own"])
    registry = ProviderRegistry([a])
    registry.register(b, claim={"own"})
    assert registry.resolve("shared") == (a, "shared")
    assert registry.resolve("own") == (b, "own")
    assert registry.resolve("b/shared") == (b, "shared")
    hidden = ScriptedProvider("h", ["only-qualified"])
    registry.register(hidden, claim=False)
    assert registry.resolve("h/only-qualified") == (hidden, "only-qualified")
    with pytest.raises(ModelNotFound):
        registry.resolve("only-qualified")


def test_a_dated_snapshot_is_routed_in_the_qualified_form_too() -> None:
    a = ScriptedProvider("a", ["claude-x"])
    registry = ProviderRegistry([a])
    registry.families = ModelFamilies([("claude-x", "claude-x")])
    assert registry.resolve("a/claude-x-20250101") == (a, "claude-x-20250101")
    with pytest.raises(ModelNotFound):
        registry.resolve("a/claude-y-20250101")


def test_addressable_lists_each_name_once_with_the_provider_that_serves_it() -> None:
    a = ScriptedProvider("a", ["m"])
    vendor = ScriptedProvider("v", ["a/m", "n"])
    registry = ProviderRegistry([a, vendor], aliases={"fast": "n"})
    names = list(registry.addressable())
    listed = dict(names)
    assert len(names) == len(listed)
    assert listed == {"m": a, "a/m": a, "n": vendor, "fast": vendor, "v/a/m": vendor, "v/n": vendor}
