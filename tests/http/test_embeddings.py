"""`POST /v1/embeddings` through a real gateway with the official `openai` SDK's `embeddings.create`:
OpenAI, an OpenAI-compatible vendor preset (Mistral), Azure and Gemini; costs at list prices by hand;
OpenAI's 400s; keys, budgets, the ledger and the cache as for chat."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import openai
import orjson
import pytest
from tests.fakes.azure_server import AzureFake
from tests.fakes.gemini_server import GeminiFake
from tests.fakes.openai_server import FakeOpenAI, Script, error_body
from tests.fakes.threaded import AiohttpServer, AsgiServer
from tests.fakes.voyage_server import VoyageFake

from calcifer.app import create_app
from calcifer.config.settings import Settings

MASTER = "mk-test-0123456789abcdefghijklmnop"
# List prices per 1M input tokens (genai-prices): embeddings are priced by input alone.
PER_M = {
    "text-embedding-3-small": Decimal("0.02"),
    "mistral-embed": Decimal("0.1"),
    "gemini-embedding-001": Decimal("0.15"),
    "voyage-3": Decimal("0.06"),
    "embed-v4.0": Decimal("0.12"),
}


class Upstreams:
    def __init__(self, tmp: Path) -> None:
        self.openai, self.mistral, self.cohere = FakeOpenAI(), FakeOpenAI(), FakeOpenAI()
        self.voyage = VoyageFake()
        self._voyage_server = AiohttpServer(self.voyage.app())
        self.azure = AzureFake({"embed-small"})
        self.gemini = GeminiFake()
        self._azure_server = AiohttpServer(self.azure.app())
        self._gemini_server = AiohttpServer(self.gemini.app())
        config = tmp / "calcifer.yaml"
        config.write_text(
            "azure:\n"
            f"  endpoint: {self._azure_server.url}\n"
            "  api_key_env: AZ_KEY\n"
            "  deployments:\n"
            "    azure-embed-small: {deployment: embed-small, input: 0.02, output: 0}\n"
        )
        env = {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "CALCIFER_MASTER_KEY": MASTER,
            "CALCIFER_CONFIG": str(config),
            "OPENAI_API_KEY": "sk-openai-test",
            "OPENAI_BASE_URL": self.openai.base_url,
            "MISTRAL_API_KEY": "mistral-test",
            "MISTRAL_BASE_URL": self.mistral.base_url,
            "GEMINI_API_KEY": self.gemini.api_key,
            "GEMINI_BASE_URL": self._gemini_server.url,
            "AZ_KEY": self.azure.api_key,
            "VOYAGE_API_KEY": self.voyage.api_key,
            "VOYAGE_BASE_URL": self._voyage_server.url + "/v1",
            "CO_API_KEY": "cohere-test",
            "COHERE_BASE_URL": self.cohere.base_url,
        }
        self.gateway = AsgiServer(create_app(Settings.from_env(env)))
        self.client = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=MASTER, max_retries=0)

    def close(self) -> None:
        self.gateway.close()
        servers = (
            self.openai,
            self.mistral,
            self.cohere,
            self._azure_server,
            self._gemini_server,
            self._voyage_server,
        )
        for server in servers:
            server.close()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    upstreams = Upstreams(tmp_path_factory.mktemp("embeddings"))
    yield upstreams
    upstreams.close()


def created(up: Upstreams, model: str, **kw: object) -> tuple[openai.types.CreateEmbeddingResponse, Decimal]:
    raw = up.client.embeddings.with_raw_response.create(model=model, **kw)  # type: ignore[arg-type]
    cost = orjson.loads(raw.http_response.content)["usage"]["cost"]
    return raw.parse(), Decimal(str(cost))


TEXTS = ["hello world", "one two three"]  # 2 + 3 tokens at the fakes


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_openai_answers_each_input_in_order_priced_by_input(up: Upstreams, encoding: str) -> None:
    result, cost = created(up, "text-embedding-3-small", input=TEXTS, encoding_format=encoding)
    sent = up.openai.requests[-1]
    assert sent == {"model": "text-embedding-3-small", "input": TEXTS, "encoding_format": encoding}
    assert up.openai.headers[-1]["Authorization"] == "Bearer sk-openai-test"
    if encoding == "float":
        assert [d.embedding for d in result.data] == [[11.0, 0.0, 0.25], [13.0, 1.0, 0.25]]
    else:  # the SDK decodes base64 itself only when it chose it; here the raw strings come back
        assert all(isinstance(d.embedding, str) for d in result.data)
    assert result.usage.prompt_tokens == 5 and result.usage.total_tokens == 5
    assert cost == 5 * PER_M["text-embedding-3-small"] / 10**6


def test_the_sdk_default_and_dimensions_and_token_ids(up: Upstreams) -> None:
    result, _ = up.client.embeddings.create(model="text-embedding-3-small", input="a b c", dimensions=2), None
    assert up.openai.requests[-1]["encoding_format"] == "base64"  # what the SDK sends by default
    assert up.openai.requests[-1]["dimensions"] == 2
    assert result.data[0].embedding == [5.0, 0.0]  # decoded by the SDK from the relayed base64
    ids, cost = created(up, "openai/text-embedding-3-small", input=[[1, 2, 3], [4, 5]])
    assert up.openai.requests[-1]["input"] == [[1, 2, 3], [4, 5]]
    assert up.openai.requests[-1]["model"] == "text-embedding-3-small"
    assert len(ids.data) == 2 and cost == 5 * PER_M["text-embedding-3-small"] / 10**6


def test_a_vendor_preset_serves_its_embedding_model(up: Upstreams) -> None:
    result, cost = created(up, "mistral/mistral-embed", input=TEXTS, encoding_format="float")
    assert up.mistral.requests[-1]["model"] == "mistral-embed"
    assert up.mistral.paths[-1] == "/v1/embeddings"
    assert result.data[1].embedding == [13.0, 1.0, 0.25]
    assert cost == 5 * PER_M["mistral-embed"] / 10**6


def test_azure_sends_the_deployment_url_and_its_key(up: Upstreams) -> None:
    result, cost = created(up, "azure-embed-small", input=TEXTS, encoding_format="float")
    received = up.azure.received[-1]
    assert received.deployment == "embed-small" and "api-version" in received.query
    assert received.headers["api-key"] == up.azure.api_key
    assert [d.index for d in result.data] == [0, 1]
    assert cost == 5 * Decimal("0.02") / 10**6


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_gemini_batch_embeds_and_the_gateway_encodes_base64(up: Upstreams, encoding: str) -> None:
    raw = up.client.embeddings.with_raw_response.create(
        model="gemini-embedding-001",
        input=TEXTS,
        dimensions=4,
        encoding_format=encoding,  # type: ignore[arg-type]
    )
    answer = orjson.loads(raw.http_response.content)
    received = up.gemini.received[-1]
    assert (received.model, received.method) == ("gemini-embedding-001", "batchEmbedContents")
    assert received.body["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": "hello world"}]},
        "outputDimensionality": 4,
    }
    vectors = [d["embedding"] for d in answer["data"]]
    if encoding == "base64":
        import base64
        import struct

        vectors = [list(struct.unpack("<4f", base64.b64decode(v))) for v in vectors]
    assert vectors == [[11.0, 0.0, 0.25, 0.25], [13.0, 1.0, 0.25, 0.25]]
    # Gemini reports no token counts here: 4 characters a token, marked as an estimate.
    tokens = 3 + 4  # ceil(11 / 4) + ceil(13 / 4)
    assert answer["usage"] == {
        "prompt_tokens": tokens,
        "total_tokens": tokens,
        "estimated": True,
        "cost": float(tokens * PER_M["gemini-embedding-001"] / 10**6),
    }


def post(up: Upstreams, body: object, key: str = MASTER) -> httpx.Response:
    return httpx.post(
        up.gateway.url + "/v1/embeddings",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": ""}, "input"),
        ({"model": "text-embedding-3-small", "input": []}, "input"),
        ({"model": "text-embedding-3-small", "input": ["a", 1]}, "input"),
        ({"model": "text-embedding-3-small", "input": [[1], []]}, "input"),
        ({"model": "text-embedding-3-small", "input": ["x"] * 2049}, "input"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": True}, "dimensions"),
    ],
)
def test_bad_bodies_get_openais_400(up: Upstreams, body: object, param: str) -> None:
    response = post(up, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_a_model_without_an_embeddings_api_is_a_400_and_no_upstream_call(up: Upstreams) -> None:
    response = post(up, {"model": "claude-sonnet-4-5", "input": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_api"
    gemini_text = post(up, {"model": "gemini-embedding-001", "input": [[1, 2]]})
    assert gemini_text.status_code == 400 and gemini_text.json()["error"]["param"] == "input"
    assert post(up, {"model": "no-such-embedder", "input": "x"}).status_code == 404


def test_upstream_errors_keep_their_status_in_openais_shape(up: Upstreams) -> None:
    up.openai.script(Script(status=400, body=error_body("Too long", "invalid_request_error", "context")))
    response = post(up, {"model": "text-embedding-3-small", "input": "x"})
    assert response.status_code == 400 and response.json()["error"]["message"] == "Too long"


def test_a_keys_embeddings_are_in_its_ledger_and_budget(up: Upstreams) -> None:
    made = httpx.post(
        up.gateway.url + "/admin/keys",
        json={"name": "rag", "max_budget": 1, "models": ["text-embedding-3-small"]},
        headers={"Authorization": f"Bearer {MASTER}"},
    ).json()
    key = str(made["key"])
    for _ in range(2):
        assert post(up, {"model": "text-embedding-3-small", "input": TEXTS}, key).status_code == 200
    assert post(up, {"model": "mistral-embed", "input": "x"}, key).status_code == 403
    deadline = time.monotonic() + 5
    while True:
        spend = httpx.get(
            up.gateway.url + "/v1/spend?group_by=model", headers={"Authorization": f"Bearer {key}"}
        )
        total = spend.json()["total"]
        if total["requests"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert total["prompt_tokens"] == 10 and total["completion_tokens"] == 0
    assert Decimal(str(total["cost"])) == 10 * PER_M["text-embedding-3-small"] / 10**6


def test_the_cache_answers_a_repeated_request_at_no_cost(up: Upstreams) -> None:
    body = {"model": "text-embedding-3-small", "input": "cache me please", "encoding_format": "float"}
    headers = {"Authorization": f"Bearer {MASTER}", "x-calcifer-cache": "on"}
    first = httpx.post(up.gateway.url + "/v1/embeddings", content=orjson.dumps(body), headers=headers)
    calls = len(up.openai.requests)
    second = httpx.post(up.gateway.url + "/v1/embeddings", content=orjson.dumps(body), headers=headers)
    assert len(up.openai.requests) == calls
    assert second.headers["x-calcifer-cache"] == "hit"
    assert second.json()["data"] == first.json()["data"] and second.json()["usage"]["cost"] == 0


def test_a_server_that_reports_only_total_tokens_or_nothing_is_still_priced(up: Upstreams) -> None:
    vector = {"object": "embedding", "index": 0, "embedding": [0.5]}
    only_total = {"object": "list", "data": [vector], "model": "mistral-embed", "usage": {"total_tokens": 7}}
    up.mistral.script(Script(body=only_total), Script(body={"object": "list", "data": [vector]}))
    first = post(up, {"model": "mistral-embed", "input": "one two"}).json()["usage"]
    assert first["prompt_tokens"] == 7 and Decimal(str(first["cost"])) == 7 * PER_M["mistral-embed"] / 10**6
    # no usage at all: counted from the input (4 characters a token), marked as an estimate, never $0
    second = post(up, {"model": "mistral-embed", "input": "twelve chars"}).json()["usage"]
    assert second == {
        "prompt_tokens": 3,
        "total_tokens": 3,
        "estimated": True,
        "cost": float(3 * PER_M["mistral-embed"] / 10**6),
    }


@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_voyage_gets_its_own_field_names_and_reports_total_tokens_only(up: Upstreams, encoding: str) -> None:
    result, cost = created(up, "voyage/voyage-3", input=TEXTS, dimensions=2, encoding_format=encoding)
    sent = up.voyage.requests[-1]
    assert sent["output_dimension"] == 2 and "dimensions" not in sent
    assert sent.get("encoding_format") == (None if encoding == "float" else "base64")
    if encoding == "float":
        assert [d.embedding for d in result.data] == [[11.0, 0.0], [13.0, 1.0]]
    assert result.usage.prompt_tokens == 5 and cost == 5 * PER_M["voyage-3"] / 10**6


def test_cohere_through_its_openai_compatibility_api(up: Upstreams) -> None:
    result, cost = created(up, "embed-v4.0", input=TEXTS, encoding_format="float")
    assert (
        up.cohere.paths[-1] == "/v1/embeddings"
        and up.cohere.headers[-1]["Authorization"] == "Bearer cohere-test"
    )
    assert len(result.data) == 2 and cost == 5 * PER_M["embed-v4.0"] / 10**6
