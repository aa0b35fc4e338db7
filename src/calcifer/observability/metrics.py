"""Prometheus metrics: the OpenTelemetry GenAI client metrics (their names, attributes and bucket
boundaries, as Prometheus spells them) and Calcifer's own (the table is `families`).

Every request is recorded once, when it has ended, from its facts (a finisher, off the response path).
Its series are bound the first time a label combination is seen and kept in a dict keyed by a small
tuple, so a request costs two dict lookups and two `record` calls. In one process the series are
plain number cells read by a collector at scrape time (`cells`); in multiprocess mode they are
prometheus_client's children, whose updates go to the worker's files (`children`). No key, user, team
or customer label is set unless the config file's `metrics.labels` asks for it. Model names come from
clients (any dated name a family matches is routable), so the first `MODEL_NAMES_KEPT` distinct names
label their own series and later ones share `OTHER_MODEL`: a client inventing names cannot grow them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry

from calcifer.domain.errors import GatewayError
from calcifer.domain.types import StreamOutcome
from calcifer.observability.cells import CellRecorder
from calcifer.observability.children import ChildRecorder
from calcifer.observability.exposition import multiprocess_dir
from calcifer.observability.families import AnswerLabels, Facts, families

__all__ = [
    "EXTRA_LABELS",
    "MODEL_NAMES_KEPT",
    "OTHER_MODEL",
    "Facts",
    "GatewayMetrics",
    "provider_system",
    "refusal",
]

EXTRA_LABELS = ("key", "user", "team", "customer")  # what `metrics.labels` may add (ids, never a secret)

# Calcifer's provider names that differ from the conventions' well-known `gen_ai.provider.name` values.
_PROVIDER_NAMES = {
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "mistral": "mistral_ai",
    "xai": "x_ai",
}
_OPERATIONS = {"/v1/completions": "text_completion"}  # every other model route is a chat
MODEL_NAMES_KEPT = 500  # distinct model names with series of their own (each costs a few KB of series)
OTHER_MODEL = "_other"


def provider_system(name: str) -> str:
    """The `gen_ai.provider.name` of one of Calcifer's providers."""
    return _PROVIDER_NAMES.get(name, name)


def refusal(error: GatewayError) -> tuple[str, str] | None:
    """(reason, level) when `error` is a budget or rate-limit refusal; the level is the one the error
    names (a key's, unless it says otherwise)."""
    reason = {"budget_exceeded": "budget", "rate_limit_error": "rate_limit"}.get(error.kind)
    if reason is None or getattr(error, "status", None) is not None:  # an upstream's 429 is no refusal
        return None
    return reason, str(getattr(error, "level", "key"))


class RouteSeries(Protocol):
    def record(self, seconds: float, overhead: float | None) -> None: ...


class AnswerSeries(Protocol):
    def record(self, facts: Facts, outcome: StreamOutcome) -> None: ...


class GatewayMetrics:
    """The gateway's request metrics in one registry (in multiprocess mode each update also goes to this
    process's files, which the scrape merges)."""

    def __init__(
        self,
        labels: Sequence[str] = (),
        registry: CollectorRegistry | None = None,
        model_names: int = MODEL_NAMES_KEPT,
    ) -> None:
        unknown = [name for name in labels if name not in EXTRA_LABELS]
        if unknown:
            raise ValueError(f"metrics.labels: unknown label {unknown[0]!r}; choose from {EXTRA_LABELS}")
        self.extra = tuple(labels)
        self.registry = registry = registry or CollectorRegistry(auto_describe=False)
        table = families(self.extra)
        recorder: CellRecorder | ChildRecorder
        if multiprocess_dir() is None:
            recorder = CellRecorder(table)
            registry.register(recorder)
        else:
            recorder = ChildRecorder(table, registry)
        self._recorder = recorder
        self.tally = recorder.tally  # the in-flight gauge's inc and dec, for the ASGI app
        self._routes: dict[tuple[object, ...], RouteSeries] = {}
        self._answers: dict[tuple[object, ...], AnswerSeries] = {}
        self._names: set[str] = set()
        self._names_kept = model_names

    def _name(self, model: str) -> str:
        """`model` as a label value: itself while fewer than the kept number of names are in use."""
        if model in self._names:
            return model
        if len(self._names) < self._names_kept:
            self._names.add(model)
            return model
        return OTHER_MODEL

    def finish(self, facts: Facts) -> None:
        """Record one request that has ended: one dict lookup and one `record` call when a model
        answered it (the usual case), more on rarer paths."""
        outcome = facts.outcome
        if outcome is None or not outcome.attempts or facts.cache_hit:
            self._unanswered(facts, outcome)
            return
        error = facts.error
        provider = facts.provider or outcome.provider
        key: tuple[object, ...] = (
            facts.route,
            facts.status,
            provider,
            facts.model,
            outcome.model,
            type(error),
        )
        extras: tuple[str, ...] = ()
        if self.extra:
            extras = self._extras(facts)
            key += extras
        bound = self._answers.get(key)
        if bound is None:
            bound = self._bind(facts, outcome, provider, extras, key)
        bound.record(facts, outcome)
        if error is not None or outcome.failovers or outcome.retries:
            self._reattempts_and_refusal(facts, outcome)

    def _bind(
        self,
        facts: Facts,
        outcome: StreamOutcome,
        provider: str,
        extras: tuple[str, ...],
        key: tuple[object, ...],
    ) -> AnswerSeries:
        error, status = facts.error, facts.status
        error_type = "" if error is None else type(error).__name__
        if not error_type and status >= 400:
            error_type = "client_closed" if status == 499 else "_OTHER"
        requested, answering = self._name(facts.model or ""), self._name(outcome.model)
        genai = (_OPERATIONS.get(facts.route, "chat"), provider_system(provider), requested, answering)
        labels = AnswerLabels(facts.route, str(status), genai, error_type, provider, answering, extras)
        bound = self._recorder.answer(labels)
        if OTHER_MODEL not in (requested, answering):  # only kept names: the dict stays bounded
            self._answers[key] = bound
        return bound

    def _unanswered(self, facts: Facts, outcome: StreamOutcome | None) -> None:
        """A request no model answered: no model route, a refusal, a cache hit, or no attempt made."""
        route = facts.route
        extras = self._extras(facts) if self.extra else ()
        key = (route, facts.status, *extras)
        bound = self._routes.get(key)
        if bound is None:
            bound = self._routes[key] = self._recorder.route(route, str(facts.status), extras)
        seconds = facts.latency_ms / 1000
        if outcome is None:
            bound.record(seconds, None)
            return
        upstream = outcome.upstream_seconds
        bound.record(seconds, seconds - upstream if seconds > upstream else 0.0)
        self._reattempts_and_refusal(facts, outcome)
        if facts.cache_hit:
            model = self._name(facts.model or "")
            self._recorder.inc("cache_hits", (model,), 1)
            if facts.cost_saved is not None:
                self._recorder.inc("cost_saved", (model,), facts.cost_saved)

    def _reattempts_and_refusal(self, facts: Facts, outcome: StreamOutcome) -> None:
        error = facts.error
        if error is not None:
            refused = refusal(error)
            if refused is not None:
                self._recorder.inc("refusals", refused, 1)
        if outcome.attempts and not facts.cache_hit:
            if outcome.failovers:
                self._recorder.inc("reattempts", ("failover",), outcome.failovers)
            if outcome.retries:
                self._recorder.inc("reattempts", ("retry",), outcome.retries)

    def _extras(self, facts: Facts) -> tuple[str, ...]:
        values = {"key": facts.key_id, "user": facts.user, "team": facts.team, "customer": facts.customer}
        return tuple(values[name] or "" for name in self.extra)
