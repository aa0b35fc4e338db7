"""Install Calcifer into a fresh virtual environment: the one script behind the image's build stage.

    python3 deploy/install.py --prefix /opt/calcifer [--source .]

It installs only what the gateway needs at run time, from `requirements.lock` with its hashes: the lock
(generated with the dev extra) is narrowed to the closure of `[project].dependencies` by following its
`# via` annotations. Then Calcifer itself (no dependencies resolved, nothing unpinned), then `pip check`
proves nothing is missing, pip itself is removed, and the `calcifer` command must run. The test suite
runs this same script in a fresh directory, so a broken step fails the tests even where no container
engine is available.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(lock: str, pyproject: str) -> str:
    """The blocks of `lock` (uv's hashed format) the run-time dependencies of `pyproject` need."""
    blocks: dict[str, tuple[str, set[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", lock):
        head = _NAME.match(block)
        if head is None:  # the header's comments
            continue
        via = re.findall(
            r"#\s+(?:via\s+)?([A-Za-z0-9][A-Za-z0-9._-]*)(?: \(pyproject\.toml\))?\s*$", block, re.M
        )
        pinned = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        blocks[normalise(head.group(1))] = ("\n".join(pinned), {normalise(v) for v in via if v != "via"})
    project = tomllib.loads(pyproject)["project"]
    needed = {normalise(_NAME.match(d.strip()).group(1)) for d in project["dependencies"]}  # type: ignore[union-attr]
    missing = needed - blocks.keys()
    if missing:
        raise SystemExit(
            f"install: requirements.lock has no pin for {', '.join(sorted(missing))}: regenerate it"
        )
    grew = True
    while grew:  # a package is needed when anything that needs it is
        before = len(needed)
        needed |= {name for name, (_, parents) in blocks.items() if parents & needed}
        grew = len(needed) > before
    return "\n".join(blocks[name][0] for name in sorted(needed)) + "\n"


def run(*command: str | Path) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run([str(part) for part in command], check=True)


def install(prefix: Path, source: Path) -> None:
    requirements = runtime_requirements(
        (source / "requirements.lock").read_text(), (source / "pyproject.toml").read_text()
    )
    venv.EnvBuilder(with_pip=True, clear=True).create(prefix)
    pinned = prefix / "requirements.runtime.txt"  # kept beside the install: what exactly is in it
    pinned.write_text(requirements)
    pip = (prefix / "bin" / "python", "-m", "pip", "--disable-pip-version-check", "--no-input")
    run(
        *pip,
        "install",
        "--no-cache-dir",
        "--require-hashes",
        "--only-binary",
        ":all:",
        "--no-deps",
        "-r",
        pinned,
    )
    run(*pip, "install", "--no-deps", source)
    run(*pip, "check")
    run(*pip, "uninstall", "--yes", "pip", "setuptools")  # a running gateway installs nothing
    run(prefix / "bin" / "calcifer", "--help")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prefix", type=Path, required=True, help="the virtual environment to create")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    install(args.prefix.resolve(), args.source.resolve())


if __name__ == "__main__":
    sys.exit(main())
