"""Summing py-spy's folded stacks: own time per innermost function, inclusive time counted once a stack."""

from __future__ import annotations

from bench.profile import report, summarise

FOLDED = """\
process 1:"calcifer serve";run (uvicorn/main.py:10);handle (calcifer/http/asgi.py:40);send (uvicorn/x.py:7) 6
process 1:"calcifer serve";run (uvicorn/main.py:10);handle (calcifer/http/asgi.py:41) 3
process 1:"calcifer serve";run (uvicorn/main.py:10);f (a.py:1);f (a.py:2);f (a.py:3) 1
not a stack line
"""


def test_lines_of_one_function_add_up_and_recursion_counts_once() -> None:
    total, own, anywhere = summarise(FOLDED)
    assert total == 10
    assert own["send (uvicorn/x.py)"] == 6
    assert own["handle (calcifer/http/asgi.py)"] == 3
    assert anywhere["handle (calcifer/http/asgi.py)"] == 9
    assert anywhere["f (a.py)"] == 1
    assert anywhere["run (uvicorn/main.py)"] == 10


def test_the_report_gives_shares_of_all_samples() -> None:
    text = report(FOLDED, top=3)
    assert text.startswith("10 samples\n")
    assert "   60.0%  send (uvicorn/x.py)" in text
    assert "   90.0%  handle (calcifer/http/asgi.py)" in text
    assert report("") == "no samples\n"
