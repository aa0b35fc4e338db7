"""Bedrock through a real gateway: enabled by a region, signed with the chain's credentials (the fake
verifies every signature), Converse for `/v1/chat/completions`, Claude's faithful `/v1/messages` lane
through InvokeModel, inference profile ids routed and priced as their model, costs by hand."""

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
from tests.fakes.bedrock_server import BedrockFake
from tests.fakes.threaded import AiohttpServer, AsgiServer

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-3-70b-instruct-v1:0"
KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# The catalogue's AWS list prices per 1M tokens (input, output).
CLAUDE_PRICE = (Decimal(3), Decimal(15))
LLAMA_PRICE = (Decimal("0.72"), Decimal("0.72"))


def cost(price: tuple[Decimal, Decimal], prompt: int, completion: int) -> Decimal:
    return (prompt * price[0] + completion * price[1]) / 10**6


class Aws:
    def __init__(self, tmp: Path) -> None:
        self.fake = BedrockFake(region="eu-west-1", credentials={KEY: (SECRET, None)})
        self.server = AiohttpServer(self.fake.app())
        env = {
            "CALCIFER_DATABASE_URL": f"sqlite:///{tmp}/calcifer.db",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "BEDROCK_BASE_URL": self.server.url,
        }
        self.gateway = AsgiServer(create_app(Settings.from_env(env)))
        self.openai = openai.OpenAI(base_url=self.gateway.url + "/v1", api_key="unused", max_retries=0)
        self.anthropic = anthropic.Anthropic(base_url=self.gateway.url, api_key="unused", max_retries=0)

    def close(self) -> None:
        self.gateway.close()
        self.server.close()


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    v = Aws(tmp_path_factory.mktemp("bedrock"))
    yield v
    v.close()


def usage_cost(raw: bytes) -> Decimal:
    return Decimal(str(orjson.loads(raw)["usage"]["cost"]))


@pytest.mark.parametrize(
    ("model", "sent", "price"),
    [
        (f"bedrock/{CLAUDE}", CLAUDE, CLAUDE_PRICE),
        (CLAUDE, CLAUDE, CLAUDE_PRICE),
        (f"bedrock/eu.{CLAUDE}", f"eu.{CLAUDE}", CLAUDE_PRICE),  # a cross-region inference profile
        (LLAMA, LLAMA, LLAMA_PRICE),
    ],
)
def test_chat_completions_go_through_converse_signed_and_priced(
    aws: Aws, model: str, sent: str, price: tuple[Decimal, Decimal]
) -> None:
    raw = aws.openai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Hi"}]
    )
    received = aws.fake.received[-1]
    assert (received.model, received.action, received.access_key) == (sent, "converse", KEY)
    assert raw.parse().choices[0].message.content is not None
    assert usage_cost(raw.http_response.content) == cost(price, 125, 60)
    assert aws.fake.refused == []


def test_a_streamed_chat_is_priced_from_the_metadata_event(aws: Aws) -> None:
    chunks = list(
        aws.openai.chat.completions.create(
            model=LLAMA,
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.model_extra is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (375, 72)
    assert Decimal(str(usage.model_extra["cost"])) == cost(LLAMA_PRICE, 375, 72)
    tool_calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert tool_calls[0] is not None and tool_calls[0][0].function is not None
    assert tool_calls[0][0].function.name == "top_song"


def test_claude_on_bedrock_keeps_the_faithful_messages_lane(aws: Aws) -> None:
    raw = aws.anthropic.messages.with_raw_response.create(
        model=f"bedrock/{CLAUDE}",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    received = aws.fake.received[-1]
    assert received.action == "invoke"
    assert received.body["anthropic_version"] == "bedrock-2023-05-31"
    assert received.body["anthropic_beta"] == ["context-1m-2025-08-07"]
    assert "model" not in received.body
    message = raw.parse()
    assert message.id == "msg_bdrk_01XFDUDYJgAACzvnptvVoYEL"
    assert usage_cost(raw.http_response.content) == cost(CLAUDE_PRICE, 12, 12)


def test_claudes_messages_stream_through_invoke_with_response_stream(aws: Aws) -> None:
    with aws.anthropic.messages.stream(
        model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert aws.fake.received[-1].action == "invoke-with-response-stream"
    assert text == "Hello!" and final.usage.output_tokens == 12


def test_other_models_on_messages_are_translated_to_converse(aws: Aws) -> None:
    message = aws.anthropic.messages.create(
        model=LLAMA, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert aws.fake.received[-1].action == "converse"
    assert message.content[0].type == "text" and message.usage.input_tokens == 125


def test_the_model_list_names_bedrock_models_in_both_forms(aws: Aws) -> None:
    ids = {m.id: m.owned_by for m in aws.openai.models.list()}
    assert ids[CLAUDE] == ids[f"bedrock/{CLAUDE}"] == "bedrock"
    assert ids[f"bedrock/{LLAMA}"] == "bedrock"
    assert not any(i.startswith("bedrock/regional.") for i in ids)


def test_titan_embeddings_with_the_sdk_priced_by_input(aws: Aws) -> None:
    raw = aws.openai.embeddings.with_raw_response.create(
        model="amazon.titan-embed-text-v2:0", input=["hello world", "one two three"], encoding_format="float"
    )
    result = raw.parse()
    assert [d.embedding for d in result.data] == [[11.0, 3.0], [13.0, 3.0]]
    assert aws.fake.received[-1].action == "invoke" and aws.fake.refused == []
    # amazon.titan-embed-text-v2:0: $0.02 / 1M input tokens; 2 + 3 tokens
    assert usage_cost(raw.http_response.content) == 5 * Decimal("0.02") / 10**6
