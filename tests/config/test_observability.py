"""The config file's `metrics:` and `tracing:` sections."""

from __future__ import annotations

import pytest

from calcifer.config.file import parse_file_config
from calcifer.config.reader import ConfigFileError


def test_the_sections_are_read() -> None:
    spec = parse_file_config(
        "metrics:\n  labels: [team, key, team]\ntracing:\n  propagate: true\n  no_propagate: [bedrock]\n"
    ).observability
    assert spec.metric_labels == ("team", "key")
    assert spec.propagate and spec.no_propagate == frozenset({"bedrock"})
    off = parse_file_config("tracing:\n  propagate: false\n").observability
    assert not off.propagate and off.metric_labels == ()
    assert parse_file_config("").observability.propagate


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("metrics:\n  labels: [tag]\n", 2, "is not one of key, user, team, customer"),
        ("metrics:\n  buckets: [1]\n", 2, "buckets"),
        ("tracing:\n  propagate: sometimes\n", 2, "true or false"),
    ],
)
def test_a_bad_section_names_its_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigFileError, match=words) as raised:
        parse_file_config(text, "calcifer.yaml")
    assert raised.value.line == line
