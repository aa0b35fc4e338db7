"""Provider plugins found through the `calcifer.providers` entry points, with the real example plugin.

The example package (`examples/calcifer-provider-example`) is "installed" for each test as a temporary
`.dist-info` on `sys.path`, its entry points copied from the package's own `pyproject.toml`; the test's
monkeypatch removes it from `sys.path` afterwards and the modules are dropped from `sys.modules`.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from calcifer.assembly.plugins import ENTRY_POINT_GROUP, PluginError, load_plugins, plugin_prices
from calcifer.domain.cost import CostCalculator
from calcifer.domain.gateway import GatewayService
from calcifer.domain.pricing import PricingConfig, PricingRegistry
from calcifer.domain.routing import ProviderRegistry
from calcifer.domain.types import ChatRequest, StreamOutcome, Usage

EXAMPLE = Path(__file__).parents[2] / "examples" / "calcifer-provider-example"


class FixedClock:
    def now(self) -> float:
        return 1764000000.0

    async def sleep(self, seconds: float) -> None:
        return None


def install(site: Path, name: str, version: str, points: dict[str, str]) -> None:
    """Write the metadata an installer would: `<name>-<version>.dist-info` with its entry points."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{ENTRY_POINT_GROUP}]", *(f"{k} = {v}" for k, v in points.items())]
    info.joinpath("entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary site directory on sys.path; imported plugin modules are forgotten afterwards."""
    before = set(sys.modules)
    directory = tmp_path / "site"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    yield directory
    for name in set(sys.modules) - before:
        if name.startswith(("calcifer_provider_example", "broken_plugin", "class_plugin")):
            del sys.modules[name]


@pytest.fixture
def example(site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    install(site, project["name"], project["version"], project["entry-points"][ENTRY_POINT_GROUP])
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    return site


def test_the_example_plugin_is_found_through_its_entry_point(example: Path) -> None:
    assert "template" in {p.name for p in entry_points(group=ENTRY_POINT_GROUP)}
    providers = load_plugins({"CALCIFER_TEMPLATE": "Echo: {prompt}!"})
    (template,) = [p for p in providers if p.name == "template"]
    assert template.models == frozenset({"template-1"}) and template.supports("template-1")
    assert plugin_prices(providers) == {"template-1": PricingConfig.per_million("1.00", "2.00")}


async def test_a_plugin_provider_is_routed_and_priced_by_the_gateway(example: Path) -> None:
    providers = load_plugins({"CALCIFER_TEMPLATE": "Echo: {prompt}!"})
    prices = PricingRegistry("test")
    for model, price in plugin_prices(providers).items():
        prices.register(model, price)
    gateway = GatewayService(ProviderRegistry(providers), CostCalculator(prices), FixedClock())
    body = {"model": "template-1", "messages": [{"role": "user", "content": "three little words"}]}
    response, priced = await gateway.complete(ChatRequest(model="template-1", body=body))
    assert response.body["choices"][0]["message"]["content"] == "Echo: three little words!"  # type: ignore[index]
    assert priced.usage == Usage(prompt_tokens=3, completion_tokens=4) and priced.provider == "template"
    # $1.00 per 1M prompt tokens, $2.00 per 1M completion tokens.
    assert priced.cost == (3 * Decimal("1.00") + 4 * Decimal("2.00")) / 1_000_000
    outcome = StreamOutcome()
    request = ChatRequest(model="template-1", body=body, stream=True, include_usage=True)
    chunks = [c async for c in gateway.stream(request, outcome)]
    assert chunks[0].data["choices"][0]["delta"]["content"] == "Echo: three little words!"  # type: ignore[index]
    assert outcome.cost == priced.cost and outcome.provider == "template"


def test_nothing_is_loaded_when_no_plugin_is_installed() -> None:
    assert "template" not in {p.name for p in load_plugins({})}


CLASS_PLUGIN = """\
from calcifer_provider_example import TemplateProvider


class Shouty(TemplateProvider):
    def __init__(self):
        super().__init__("{prompt}!!")
        self.name = "shouty"


class Configured(TemplateProvider):
    def __init__(self, env, template="unused"):
        super().__init__(env["CONFIGURED_TEMPLATE"])
        self.name = "configured"
"""


async def test_provider_classes_are_entry_points_too(example: Path) -> None:
    example.joinpath("class_plugin.py").write_text(CLASS_PLUGIN)
    points = {"shouty": "class_plugin:Shouty", "configured": "class_plugin:Configured"}
    install(example, "class-plugin", "1.0", points)
    by_name = {p.name: p for p in load_plugins({"CONFIGURED_TEMPLATE": "[{prompt}]"})}
    assert set(by_name) == {"template", "shouty", "configured"}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    answers = [
        await by_name[n].complete(ChatRequest(model="template-1", body=body))
        for n in ("shouty", "configured")
    ]
    assert [a.body["choices"][0]["message"]["content"] for a in answers] == ["hi!!", "[hi]"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("module", "target", "problem"),
    [
        ("", "no_such_module_xyz:create", "cannot be loaded: ModuleNotFoundError"),
        (
            "def create(env):\n    return object()\n",
            "broken_plugin:create",
            "built object, which is not a Provider",
        ),
        (
            "def create(env):\n    raise RuntimeError('no key')\n",
            "broken_plugin:create",
            "failed to build: RuntimeError",
        ),
        ("create = 42\n", "broken_plugin:create", "names int, not a factory or a class"),
        ("", "broken_plugin:missing", "cannot be loaded: AttributeError"),
    ],
)
def test_a_broken_plugin_stops_start_up_naming_itself(
    site: Path, module: str, target: str, problem: str
) -> None:
    site.joinpath("broken_plugin.py").write_text(module)
    install(site, "broken-plugin", "0.0.1", {"broken": target})
    with pytest.raises(PluginError) as caught:
        load_plugins({})
    message = str(caught.value)
    assert message.startswith(f"provider plugin 'broken' ({target} from broken-plugin 0.0.1)")
    assert problem in message


def test_a_plugin_may_only_price_its_own_models(example: Path) -> None:
    (template,) = [p for p in load_plugins({}) if p.name == "template"]
    template.models = frozenset({"other-model"})
    with pytest.raises(PluginError, match="prices 'template-1', a model it does not serve"):
        plugin_prices([template])
