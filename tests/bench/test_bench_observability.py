"""The observability benchmark drives each configuration and reports them beside each other."""

from __future__ import annotations

import re

import pytest

from bench import observability


def test_reports_each_configuration_and_what_it_adds(capsys: pytest.CaptureFixture[str]) -> None:
    assert observability.main(["json", "40", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("json, 40 requests per round, 1 rounds")
    for name in ("off", "metrics", "tracing", "both"):
        assert re.search(rf"^  {name} +\d+\.\d \[", out, re.MULTILINE), out
    assert out.count("over off") == 3


def test_an_unknown_kind_is_refused() -> None:
    assert observability.main(["xml"]) == 2
