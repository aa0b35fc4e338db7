"""Traces through a real gateway to a real OTLP/HTTP receiver on loopback: a SERVER span continuing the
client's `traceparent`, a CLIENT span per upstream attempt with the GenAI attributes and the cost, and the
attempt's `traceparent` at the upstream (unless the config file turns it off for that provider)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.openai_server import FakeOpenAI, Script, error_body
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.fakes.threaded import AsgiServer
from tests.routing.conftest import CONFIG

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "temperature": 0.5}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
EMBEDDING = "text-embedding-3-small"
# Both fakes also serve the embeddings model, primary first (CONFIG ends inside `routing.models`).
EMBEDDING_ROUTE = f"""\
    {EMBEDDING}:
      strategy: cheapest
      deployments:
        - {{provider: primary, weight: 2}}
        - {{provider: backup, weight: 1}}
"""


class Traced:
    def __init__(self, tmp_path: Path, extra_config: str = "", env: dict[str, str] | None = None) -> None:
        self.receiver = OtlpReceiver()
        self.primary, self.backup = FakeOpenAI(), FakeOpenAI()
        config = tmp_path / "calcifer.yaml"
        config.write_text(
            CONFIG.format(
                primary=self.primary.base_url, backup=self.backup.base_url, request_timeout="10s", tag=""
            )
            .replace("timeout: 0.5", "timeout: 10")  # one attempt per request, even on a loaded machine
            .replace("models: [gpt-4o", f"models: [{EMBEDDING}, gpt-4o")
            + EMBEDDING_ROUTE
            + extra_config
        )
        settings = Settings.from_env(
            {
                "CALCIFER_DATABASE_URL": f"sqlite:///{tmp_path}/calcifer.db",
                "CALCIFER_CONFIG": str(config),
                "OTEL_EXPORTER_OTLP_ENDPOINT": self.receiver.url,
                "OTEL_SERVICE_NAME": "gateway-under-test",
                "OTEL_BSP_SCHEDULE_DELAY": "20",
                **(env or {}),
            }
        )
        self.gateway = AsgiServer(create_app(settings))

    @property
    def url(self) -> str:
        return self.gateway.url + "/v1/chat/completions"

    def spans(self, count: int) -> list[ReceivedSpan]:
        return self.receiver.wait_for(count)

    def close(self) -> None:
        self.gateway.close()
        for closing in (self.primary, self.backup, self.receiver):
            closing.close()


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Callable[..., Traced]]:
    made: list[Traced] = []

    def make(extra_config: str = "", env: dict[str, str] | None = None) -> Traced:
        made.append(Traced(tmp_path, extra_config, env))
        return made[-1]

    yield make
    for setup in made:
        setup.close()


def _one(spans: list[ReceivedSpan], kind: str) -> ReceivedSpan:
    [found] = [s for s in spans if s.kind == kind]
    return found


def test_a_request_continues_the_clients_trace_down_to_the_upstream(traced: Callable[..., Traced]) -> None:
    setup = traced()
    answer = httpx.post(setup.url, json=BODY, headers={"traceparent": TRACEPARENT}, timeout=10)
    assert answer.status_code == 200
    spans = setup.spans(2)
    server, client = _one(spans, "SERVER"), _one(spans, "CLIENT")
    assert server.service == client.service == "gateway-under-test"
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, CLIENT_SPAN)
    assert (client.trace_id, client.parent_span_id) == (TRACE_ID, server.span_id)
    assert server.name == "POST /v1/chat/completions"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.route"] == "/v1/chat/completions"
    assert server.attributes["gen_ai.request.model"] == "gpt-4o"
    assert server.attributes["calcifer.request_id"] == answer.headers["x-request-id"]
    assert client.name == "chat gpt-4o"
    usage = answer.json()["usage"]
    assert client.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "primary",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.5,
        "calcifer.provider": "primary",
        "calcifer.deployment": "primary/gpt-4o",
        "calcifer.attempt": 1,
        "gen_ai.response.id": answer.json()["id"],
        "gen_ai.response.model": answer.json()["model"],
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 0,
        "gen_ai.usage.cost": usage["cost"],
    }
    assert server.attributes["gen_ai.usage.cost"] == usage["cost"]
    assert server.start_ns <= client.start_ns <= client.end_ns <= server.end_ns
    # The upstream got the attempt's traceparent: same trace, the CLIENT span as its parent.
    [sent] = setup.primary.headers
    assert sent["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"
    exported = " ".join(str(v) for span in spans for v in span.attributes.values())
    assert "hello" not in exported  # no prompt recorded


def test_a_failover_is_two_client_spans_and_the_failed_one_says_why(traced: Callable[..., Traced]) -> None:
    setup = traced()
    setup.primary.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    answer = httpx.post(setup.url, json=BODY, timeout=10)
    assert answer.headers["x-calcifer-attempts"] == "2"
    spans = setup.spans(3)
    server = _one(spans, "SERVER")
    assert server.parent_span_id == ""  # no traceparent from the client: a new trace
    first, second = sorted(
        (s for s in spans if s.kind == "CLIENT"), key=lambda s: s.attributes["calcifer.attempt"]
    )
    assert {first.parent_span_id, second.parent_span_id} == {server.span_id}
    assert (first.attributes["calcifer.deployment"], first.status) == ("primary/gpt-4o", "ERROR")
    assert first.attributes["error.type"] == "UpstreamUnavailable"
    assert "gen_ai.usage.cost" not in first.attributes
    assert (second.attributes["calcifer.deployment"], second.status) == ("backup/gpt-4o", "UNSET")
    assert second.attributes["gen_ai.usage.cost"] == answer.json()["usage"]["cost"]
    assert server.attributes["calcifer.attempts"] == 2
    assert setup.primary.headers[0]["traceparent"].split("-")[2] == first.span_id
    assert setup.backup.headers[0]["traceparent"].split("-")[2] == second.span_id


def test_an_embeddings_request_is_traced_as_the_embeddings_operation(traced: Callable[..., Traced]) -> None:
    setup = traced()
    setup.primary.script(Script(status=500, body=error_body("The server had an error", "server_error")))
    answer = httpx.post(
        setup.gateway.url + "/v1/embeddings",
        json={"model": EMBEDDING, "input": ["two words", "and three words"]},
        headers={"traceparent": TRACEPARENT},
        timeout=10,
    )
    assert answer.status_code == 200
    spans = setup.spans(3)
    server = _one(spans, "SERVER")
    assert (server.trace_id, server.parent_span_id) == (TRACE_ID, CLIENT_SPAN)
    assert server.name == "POST /v1/embeddings"
    assert server.attributes["gen_ai.request.model"] == EMBEDDING
    assert server.attributes["calcifer.attempts"] == 2
    failed, answered = sorted(
        (s for s in spans if s.kind == "CLIENT"), key=lambda s: s.attributes["calcifer.attempt"]
    )
    assert {failed.parent_span_id, answered.parent_span_id} == {server.span_id}
    assert failed.name == answered.name == f"embeddings {EMBEDDING}"
    assert failed.status == "ERROR"

    def attempt(provider: str, number: int) -> dict[str, object]:
        return {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": EMBEDDING,
            "calcifer.provider": provider,
            "calcifer.deployment": f"{provider}/{EMBEDDING}",
            "calcifer.attempt": number,
        }

    assert failed.attributes == {**attempt("primary", 1), "error.type": "UpstreamUnavailable"}
    usage = answer.json()["usage"]
    assert usage["prompt_tokens"] == 5
    assert answered.status == "UNSET"
    assert answered.attributes == {
        **attempt("backup", 2),
        "gen_ai.response.model": answer.json()["model"],
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.cost": usage["cost"],
    }
    assert usage["cost"] > 0
    assert server.attributes["gen_ai.usage.cost"] == usage["cost"]
    assert setup.backup.headers[0]["traceparent"] == f"00-{TRACE_ID}-{answered.span_id}-01"


def test_a_stream_span_ends_with_the_stream_and_carries_its_usage(traced: Callable[..., Traced]) -> None:
    setup = traced()
    with httpx.stream("POST", setup.url, json={**BODY, "stream": True}, timeout=10) as streamed:
        events = [line for line in streamed.iter_lines() if line.startswith("data: {")]
    spans = setup.spans(2)
    client = _one(spans, "CLIENT")
    assert client.attributes["gen_ai.request.stream"] is True
    assert client.attributes["gen_ai.usage.output_tokens"] > 0
    assert client.attributes["gen_ai.usage.cost"] > 0
    assert client.attributes["gen_ai.response.id"] in events[0]


def test_propagation_is_switched_off_per_provider(traced: Callable[..., Traced]) -> None:
    setup = traced("tracing:\n  no_propagate: [primary]\n")
    httpx.post(setup.url, json=BODY, headers={"traceparent": TRACEPARENT}, timeout=10)
    assert "traceparent" not in setup.primary.headers[0]
    assert len(setup.spans(2)) == 2  # still traced


def test_a_sampler_that_drops_everything_exports_nothing(traced: Callable[..., Traced]) -> None:
    setup = traced(env={"OTEL_TRACES_SAMPLER": "always_off"})
    assert httpx.post(setup.url, json=BODY, timeout=10).status_code == 200
    setup.gateway.close()  # shutdown flushes what the processor holds
    assert setup.receiver.spans == []
    # An unsampled trace still reaches the upstream, marked unsampled.
    flags = int(setup.primary.headers[0]["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 1 == 0  # the `sampled` bit


def test_tracing_is_off_without_an_endpoint(
    start_gateway: Callable[[dict[str, str]], AsgiServer],
    gateway_env: dict[str, str],
    fake_openai: FakeOpenAI,
) -> None:
    gateway = start_gateway(gateway_env)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    httpx.post(
        gateway.url + "/v1/chat/completions", json=body, headers={"traceparent": TRACEPARENT}, timeout=10
    )
    assert "traceparent" not in fake_openai.headers[0]
