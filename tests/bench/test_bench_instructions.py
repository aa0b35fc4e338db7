"""The instruction-count benchmark reads callgrind's totals and turns counts into microseconds by the
`off` configuration's instructions per microsecond (valgrind itself is not run here: minutes)."""

from __future__ import annotations

import pytest

from bench import instructions


def test_the_totals_are_read_not_the_summary() -> None:
    out = "version: 1\ncreator: callgrind-3.19.0\nsummary: 0\nevents: Ir\nfn=(1) main\n1 5\ntotals: 123456\n"
    assert instructions.totals(out) == 123456
    with pytest.raises(ValueError, match="no totals"):
        instructions.totals("summary: 0\n")


def test_the_report_converts_by_the_off_configurations_rate() -> None:
    counts = {"off": 800_000, "metrics": 840_000, "tracing": 1_000_000, "both": 1_040_000}
    lines = instructions.report("json", 400, counts, 200.0).splitlines()
    assert lines[0].startswith("json, 400 requests per configuration")
    assert "4000 instructions/us" in lines[0]
    assert lines[1].split() == ["off", "800000", "~", "200.0", "us"]
    assert lines[2].endswith("(+10.0 us over off)")
    assert lines[3].endswith("(+50.0 us over off)")


def test_an_unknown_kind_is_refused() -> None:
    assert instructions.main(["xml"]) == 2
