"""The one check of header values the gateway derives from a client's input."""

from __future__ import annotations

import pytest

from calcifer.http.headers import MAX_VALUE, echoed, header_names, request_id


@pytest.mark.parametrize("value", ["gpt-4o-mini", "a b", "x" * MAX_VALUE, "~!#"])
def test_visible_ascii_is_echoed(value: str) -> None:
    assert echoed(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        "gpt\n",
        "\u001b",
        "a\u0000b",
        "\u0100",
        "模型",
        "🙂",
        "é",
        " lead",
        "trail ",
        "\t",
        "x" * (MAX_VALUE + 1),
    ],
)
def test_anything_else_is_left_out(value: str) -> None:
    assert echoed(value) is None


def test_request_ids_are_short_plain_tokens() -> None:
    assert request_id(b"req-1.a:b_c") and request_id(b"x" * 128)
    assert not request_id(b"") and not request_id(b"x" * 129) and not request_id(b"a b")
    assert not request_id(b"id\n") and not request_id("é".encode())


def test_header_names_are_tokens_joined() -> None:
    assert header_names(["authorization", "x-api-key"]) == "authorization, x-api-key"
    assert header_names([]) == ""
    assert header_names(["ok", "not ok"]) is None and header_names(["é"]) is None
