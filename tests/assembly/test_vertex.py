"""Vertex AI through a real gateway: enabled by VERTEX_PROJECT, a service-account JSON exchanged at the
fake token endpoint, Gemini for `/v1/chat/completions` and Claude on the faithful `/v1/messages` lane,
priced from Google's price list under `vertex/<model>`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import openai
import orjson
import pytest

from calcifer.app import create_app
from calcifer.config.settings import Settings
from tests.fakes.threaded import AiohttpServer, AsgiServer
from tests.fakes.vertex_server import VertexFake, service_account


class Gcp:
    def __init__(self, tmp: Path) -> None:
        self.fake = VertexFake()
        self.server = AiohttpServer(self.fake.app())
        credentials = tmp / "sa.json"
        self.fake.public_key = service_account(credentials, self.server.url + "/token").public_key()
        env = {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "VERTEX_PROJECT": "test-project",
            "VERTEX_LOCATION": "us-east5",
            "VERTEX_BASE_URL": self.server.url,
            "GOOGLE_APPLICATION_CREDENTIALS": str(credentials),
        }
        self.gateway = AsgiServer(create_app(Settings.from_env(env)))
        self.openai = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=self.gateway.url, api_key="unused", max_retries=0)

    def close(self) -> None:
        self.gateway.close()
        self.server.close()


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gcp]:
    v = Gcp(tmp_path_factory.mktemp("vertex"))
    yield v
    v.close()


def test_gemini_on_vertex_by_its_qualified_name(gcp: Gcp) -> None:
    raw = gcp.openai.chat.completions.with_raw_response.create(
        model="vertex/gemini-2.5-pro", messages=[{"role": "user", "content": "Hi"}]
    )
    received = gcp.fake.received[-1]
    assert (received.publisher, received.model, received.method) == (
        "google",
        "gemini-2.5-pro",
        "generateContent",
    )
    assert received.token.startswith("ya29.fake-")
    assert raw.parse().choices[0].message.content == "Hi from Gemini on Vertex"
    # gemini-2.5-pro: $1.25 / 1M input, $10 / 1M output; 10 in + 6 out
    expected = (10 * Decimal("1.25") + 6 * Decimal(10)) / 10**6
    assert Decimal(str(orjson.loads(raw.http_response.content)["usage"]["cost"])) == expected


def test_claude_on_vertex_keeps_the_faithful_messages_lane(gcp: Gcp) -> None:
    raw = gcp.anthropic.messages.with_raw_response.create(
        model="vertex/claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    )
    received = gcp.fake.received[-1]
    assert (received.publisher, received.method) == ("anthropic", "rawPredict")
    assert received.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in received.body
    assert raw.parse().id == "msg_vrtx_01Ab3tq6bNt2DwVoPDx8zM8H"
    expected = (20 * Decimal(3) + 8 * Decimal(15)) / 10**6  # Claude Sonnet 4.5 on Vertex: $3 / $15
    assert Decimal(str(orjson.loads(raw.http_response.content)["usage"]["cost"])) == expected
    with gcp.anthropic.messages.stream(
        model="vertex/claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from Vertex!"
    assert gcp.fake.received[-1].method == "streamRawPredict" and gcp.fake.refused == []


def test_the_model_list_names_vertex_models(gcp: Gcp) -> None:
    ids = {m.id: m.owned_by for m in gcp.openai.models.list()}
    assert ids["vertex/gemini-2.5-pro"] == ids["vertex/claude-sonnet-4-5"] == "vertex"
    assert ids["gemini-2.5-pro"] == "gemini"  # the bare name stays the Gemini API's


def test_vertex_embeddings_with_the_sdk(gcp: Gcp) -> None:
    raw = gcp.openai.embeddings.with_raw_response.create(
        model="vertex/gemini-embedding-001",
        input=["hello world", "a b c"],
        dimensions=2,
        encoding_format="float",
    )
    received = gcp.fake.received[-1]
    assert (received.model, received.method) == ("gemini-embedding-001", "predict")
    assert received.body == {
        "instances": [{"content": "hello world"}, {"content": "a b c"}],
        "parameters": {"outputDimensionality": 2},
    }
    assert [d.embedding for d in raw.parse().data] == [[11.0, 0.5], [5.0, 0.5]]
    # gemini-embedding-001: $0.15 / 1M input tokens; 2 + 3 tokens by the statistics
    assert (
        Decimal(str(orjson.loads(raw.http_response.content)["usage"]["cost"])) == 5 * Decimal("0.15") / 10**6
    )
