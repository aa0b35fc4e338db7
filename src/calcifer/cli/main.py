"""The `calcifer` command: one sub-command per module of this package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from calcifer.cli import keys, levels, migrate, prices, serve, spend, tags


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="calcifer", description="Calcifer, an AI gateway.")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (serve, migrate, spend, prices, keys, levels, tags):
        command.register(commands)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
