"""What every command reads first: the settings, from the environment."""

from __future__ import annotations

import os
import sys

from calcifer.config.settings import ConfigError, Settings


def settings_or_report() -> Settings | None:
    """The settings, or None after printing what is wrong (the command then exits 2)."""
    try:
        return Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"calcifer: configuration error: {exc}", file=sys.stderr)
        return None
