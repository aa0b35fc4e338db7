"""What the deployment files may name: Calcifer's environment variables, health paths and port."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "calcifer"
PORT = 8080  # SERVER_PORT's default
HEALTH_PATHS = {"/health/live", "/health/ready"}
# Values that are fine to write down in a manifest: no secret is ever one of these.
_NOT_SECRET = re.compile(r"^(|\$\{[A-Z0-9_]+(:[-?][^}]*)?\})$")


def known_env_names() -> set[str]:
    """Every environment variable Calcifer reads: the names written as string literals in its source,
    and the `<PREFIX>_API_KEY`/`_BASE_URL`/`_TIMEOUT`/`_MAX_RETRIES` family of `provider_settings`."""
    names: set[str] = set()
    for module in SRC.rglob("*.py"):
        text = module.read_text()
        names |= set(re.findall(r"""["']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["']""", text))
        for prefix in re.findall(r"""provider_settings\(\s*env,\s*"([A-Z0-9]+)\"""", text):
            names |= {f"{prefix}_{suffix}" for suffix in ("API_KEY", "BASE_URL", "TIMEOUT", "MAX_RETRIES")}
    return names


def looks_secret(name: str) -> bool:
    return bool(re.search(r"KEY|PASSWORD|SECRET|TOKEN|_URL$", name))


def inlined_secret(name: str, value: object) -> bool:
    """Whether `name=value` writes a secret down (anything but empty or a `${VAR}` reference); URLs
    count when they carry a password (`user:password@`)."""
    text = str(value)
    if name.endswith("_URL"):
        return bool(re.search(r"://[^/@:]+:(?!\$\{)[^@/]+@", text))
    return looks_secret(name) and not _NOT_SECRET.match(text)
