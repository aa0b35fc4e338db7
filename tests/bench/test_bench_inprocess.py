"""The in-process driver really drives the gateway: both request kinds complete against the fake upstream
(a non-200 answer would raise), and CPU per request comes out as a positive number."""

from __future__ import annotations

import re

import pytest

from bench import inprocess


@pytest.mark.parametrize("kind", ["json", "stream"])
def test_drives_the_app_and_reports_cpu_per_request(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert inprocess.main([kind, "80"]) == 0
    out = capsys.readouterr().out
    match = re.fullmatch(rf"{kind}: (\d+\.\d) us of CPU per request \(80 requests, 8 concurrent\)\n", out)
    assert match is not None, out
    assert float(match.group(1)) > 0


def test_an_unknown_kind_is_refused_with_the_usage() -> None:
    assert inprocess.main(["xml"]) == 2
