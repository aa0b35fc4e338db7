"""`python -m bench.profile FILE.folded [N]`: where the gateway's CPU went, from py-spy's folded stacks
(`python -m bench.run --profile`): the top N functions by own time and by time including callees."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """`name (path/file.py:123)` without the line number, so a function's lines add up."""
    return _LINE.sub(")", frame.strip())


def summarise(text: str) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per innermost function, samples per function anywhere on the stack."""
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    return total, own, anywhere


def report(text: str, top: int = 25) -> str:
    total, own, anywhere = summarise(text)
    if not total:
        return "no samples\n"
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in anywhere.most_common(top)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    print(report(Path(args[0]).read_text(), int(args[1]) if len(args) > 1 else 25), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
