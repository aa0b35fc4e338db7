"""The keyed benchmark drives a budgeted, rate-limited key beside the keyless path and reports both and
their ratio (a keyed request refused by a budget, a limit or its key would stop the run: the bench
raises on any answer but 200)."""

from __future__ import annotations

import os
import re

import pytest

from bench import keyed


def test_reports_keyless_and_keyed_side_by_side(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALCIFER_REDIS_URL", raising=False)
    assert keyed.main(["both", "40", "1"]) == 0
    out = capsys.readouterr().out
    sections = out.split("requests per round")
    assert [part.rsplit("\n", 1)[-1] for part in sections[:-1]] == ["json, 40 ", "stream, 40 "], out
    for section in sections[1:]:
        assert re.search(r"^  keyless +\d+\.\d \[", section, re.MULTILINE), out
        assert re.search(r"^  keyed +\d+\.\d \[[^]]+\]  \d+\.\d\dx keyless$", section, re.MULTILINE), out
    assert "redis" not in out


def test_runs_the_redis_limiter_beside_the_memory_one(capsys: pytest.CaptureFixture[str]) -> None:
    url = os.environ.get("CALCIFER_TEST_REDIS_URL")
    if not url:
        message = "CALCIFER_TEST_REDIS_URL is not set: the keyed bench did not run on Redis"
        if os.environ.get("CALCIFER_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    assert keyed.main(["json", "40", "1", "--redis", url]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  keyed +\d+\.\d \[[^]]+\]  \d+\.\d\dx keyless$", out, re.MULTILINE), out
    assert re.search(r"^  keyed-redis +\d+\.\d \[[^]]+\]  \d+\.\d\dx keyless-redis$", out, re.MULTILINE), out


@pytest.mark.parametrize("argv", [["xml"], ["json", "40", "1", "--redis"]])
def test_bad_arguments_get_the_usage(argv: list[str]) -> None:
    assert keyed.main(argv) == 2
