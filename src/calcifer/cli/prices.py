"""`calcifer prices MODEL` and `calcifer prices --check`: the price catalogue, readable by a person.

Rates are shown as charged: a token class without a rate of its own (cached input, cache writes,
reasoning) is billed at its base rate, and is shown so, marked "(base rate)".
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from calcifer.cli.context import settings_or_report
from calcifer.domain.pricing import PricingConfig, PricingRegistry

_THOUSAND = Decimal(1000)


def register(commands: Any) -> None:
    prices = commands.add_parser("prices", help="show a model's prices, or --check for unpriced models")
    prices.add_argument("model", nargs="?", help="a routable model name")
    prices.add_argument(
        "--check", action="store_true", help="list routable models without a price (exit 1 if any)"
    )
    prices.set_defaults(handler=command)


def command(args: argparse.Namespace) -> int:
    from calcifer.assembly.providers import assemble

    settings = settings_or_report()
    if settings is None:
        return 2
    built = assemble(settings)
    models = [(m, p.name) for p in built.registry.providers.values() for m in p.models]
    text, code = prices_command(built.pricing, models, args.model, args.check)
    print(text, end="")
    return code


def prices_command(
    pricing: PricingRegistry,
    models: list[tuple[str, str]],
    model: str | None,
    check: bool,
    *,
    at: datetime | None = None,
) -> tuple[str, int]:
    """The text to print and the exit code.

    `models` are the routable models as (model, provider name) pairs — the models the providers claim,
    aliases left out (an alias is priced as its target). `at` is "now" (tests pin it).
    """
    now = at or datetime.now(UTC)
    if check:
        return _check(pricing, models)
    if model is None:
        return "usage: calcifer prices MODEL | calcifer prices --check", 2
    return _show(pricing, models, model, now)


def _check(pricing: PricingRegistry, models: Sequence[tuple[str, str]]) -> tuple[str, int]:
    missing = sorted((name, provider) for name, provider in models if name not in pricing)
    header = f"catalogue: {pricing.version}"
    if not missing:
        return f"{header}\nall {len(models)} routable models have a price\n", 0
    lines = [
        header,
        f"{len(missing)} of {len(models)} routable models have no price (cost reported as null):",
    ]
    lines += [f"  {name}  ({provider})" for name, provider in missing]
    return "\n".join(lines) + "\n", 1


def _show(
    pricing: PricingRegistry, models: Sequence[tuple[str, str]], model: str, now: datetime
) -> tuple[str, int]:
    provider = next((p for name, p in models if name == model), None)
    history = pricing.history(model)
    where = f" (provider: {provider})" if provider else " (not routable)"
    lines = [f"{model}{where}", f"catalogue: {pricing.version}"]
    current = pricing.get(model, now)
    if current is None:
        lines.append("no price: its cost is reported as null")
        return "\n".join(lines) + "\n", 1
    lines.append(f"in force on {now.date().isoformat()}, USD:")
    lines += _table(current)
    for tier in sorted(current.tiers, key=lambda t: t.threshold):
        lines.append(f"when the prompt has more than {tier.threshold:,} tokens, every token of the request:")
        lines += _table(tier.config)
    if len(history) > 1:
        lines.append("price history (per 1M tokens, input / output):")
        for index, (since, config) in enumerate(history):
            following = history[index + 1][0] if index + 1 < len(history) else None
            rates = f"{_m(config.input_cost_per_1k)} / {_m(config.output_cost_per_1k)}"
            lines.append(f"  {_period(since, following)}: {rates}")
    return "\n".join(lines) + "\n", 0


def _table(config: PricingConfig) -> list[str]:
    rows = [f"  {'token class':<20} {'per 1M':>14} {'per 1K':>14}"]
    for label, rate, fallback in _classes(config):
        note = f"  (at the {fallback} rate)" if fallback else ""
        rows.append(f"  {label:<20} {_m(rate):>14} {_plain(rate):>14}{note}")
    if config.cache_write_1h_cost_per_1k is not None:
        rows.append("  (usage does not tell 1h cache writes apart yet: every write is billed at the 5m rate)")
    return rows


def _classes(config: PricingConfig) -> list[tuple[str, Decimal, str]]:
    """Every token class, the rate it is charged per 1K tokens, and the class whose rate it borrows."""

    def rate(own: Decimal | None, base: Decimal, base_name: str) -> tuple[Decimal, str]:
        return (base, base_name) if own is None else (own, "")

    inp, out = config.input_cost_per_1k, config.output_cost_per_1k
    write = rate(config.cache_write_cost_per_1k, inp, "input")
    return [
        ("input", inp, ""),
        ("cached input", *rate(config.cached_input_cost_per_1k, inp, "input")),
        ("cache write (5m)", *write),
        ("cache write (1h)", *rate(config.cache_write_1h_cost_per_1k, write[0], "5m cache write")),
        ("output", out, ""),
        ("reasoning", *rate(config.reasoning_cost_per_1k, out, "output")),
    ]


def _period(since: datetime | None, until: datetime | None) -> str:
    start = "always" if since is None else f"from {since.date().isoformat()}"
    if until is None:
        return start if since is not None else "always"
    return (
        f"{start} until {until.date().isoformat()}"
        if since is not None
        else f"until {until.date().isoformat()}"
    )


def _m(per_1k: Decimal) -> str:
    return _plain(per_1k * _THOUSAND)


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
