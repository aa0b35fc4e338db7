"""The codec comparison times the gateway's real JSON steps, and each codec does them correctly: the
cost spliced into the answer is the exact decimal, not a float."""

from __future__ import annotations

import orjson

from bench import codecs, payloads


def test_every_codec_does_each_step_correctly() -> None:
    for name, codec in codecs._codecs().items():
        steps = codecs._steps(codec)
        forwarded = orjson.loads(steps["client body: decode, set model, encode"]())  # type: ignore[arg-type]
        assert forwarded["model"] == payloads.UPSTREAM_MODEL, name
        answer = steps["answer: decode, splice cost, encode"]()
        assert isinstance(answer, bytes) and b'"cost":0.0000138}' in answer, name
        event = steps["stream event: decode"]()
        assert isinstance(event, dict) and event["object"] == "chat.completion.chunk", name


def test_measure_times_every_step_of_every_codec() -> None:
    rows = codecs.measure(rounds=20)
    assert {(step, name) for step, name, _ in rows} == {
        (step, name) for name, codec in codecs._codecs().items() for step in codecs._steps(codec)
    }
    assert all(us > 0 for _, _, us in rows)
    assert ("stream event: decode", "orjson") in {(step, name) for step, name, _ in rows}
